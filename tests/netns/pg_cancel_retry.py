# Driver of tests/netns/pg_cancel_retry.sh (runs in host 1): reserves a bundle on the only node with
# "pin" (host 2), removes the group while the shell has cut host 2 off, and then expects the bundle's
# resource back in the cluster's available resources once host 2 is reachable again.
import os
import sys
import time

import rayc
from rayc.util.placement_group import placement_group, remove_placement_group

ROOT = os.environ["ROOT"]


def wait_file(name, seconds):
    deadline = time.time() + seconds
    while not os.path.exists(os.path.join(ROOT, name)):
        if time.time() > deadline:
            sys.exit("FAIL: no %s from the shell" % name)
        time.sleep(0.05)


def pins():
    return rayc.available_resources().get("pin", 0)


rayc.init()
pg = placement_group([{"pin": 1}], strategy="PACK")
if not pg.wait(30):
    sys.exit("FAIL: the group was not placed")
deadline = time.time() + 10
while pins() != 0 and time.time() < deadline:  # the view catches up within a heartbeat
    time.sleep(0.1)
print("READY pin available while reserved: %s" % pins(), flush=True)
wait_file("cut", 60)
remove_placement_group(pg)
print("REMOVED", flush=True)
wait_file("up", 60)
deadline = time.time() + 30
while pins() != 1 and time.time() < deadline:
    time.sleep(0.2)
if pins() != 1:
    sys.exit("FAIL: 30 s after host 2 came back, its pin is still reserved (available %s)" % pins())
print("PASS the bundle came back after the link returned", flush=True)
