#!/usr/bin/python3
"""The dashboard in headless Chromium, driven through chromedriver's WebDriver API (python3-requests).

Usage: browser.py URL TOKEN_FILE SCREENSHOT NODES JOB_ID MARKER
Checks: without the token the dashboard's pages redirect to /login; logging in with the token
shows the overview with NODES nodes alive; the jobs tab lists job JOB_ID as RUNNING and its logs
show MARKER. Keeps a screenshot of the job's logs at SCREENSHOT. Exits 0 when every check passed.
"""
import base64
import os
import socket
import subprocess
import sys
import tempfile
import time

import urllib.parse

import requests

url, token_file, shot, nodes, job_id, marker = sys.argv[1:7]
token = open(token_file).read().strip()
failures = []
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver element key


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def path_of(u):
    return urllib.parse.urlsplit(u).path


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Browser:
    """One WebDriver session on a private chromedriver."""

    def __init__(self):
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="rayc-chromium-")
        self.driver = subprocess.Popen(["chromedriver", f"--port={self.port}"], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if requests.get(self.base + "/status", timeout=2).json()["value"]["ready"]:
                    break
            except (requests.RequestException, ValueError, KeyError):
                pass
            time.sleep(0.2)
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={self.profile}"]
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome",
                                                 "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}}}
        r = requests.post(self.base + "/session", json=caps, timeout=60).json()
        self.sid = r["value"]["sessionId"]
        self.s = f"{self.base}/session/{self.sid}"

    def cmd(self, method, path, body=None):
        r = requests.request(method, self.s + path, json=body if body is not None else {}, timeout=60)
        return r.json().get("value")

    def go(self, u):
        self.cmd("POST", "/url", {"url": u})

    def url(self):
        return self.cmd("GET", "/url")

    def find(self, css):
        v = self.cmd("POST", "/element", {"using": "css selector", "value": css})
        return v.get(ELEMENT) if isinstance(v, dict) else None

    def text(self, css):
        e = self.find(css)
        return self.cmd("GET", f"/element/{e}/text") if e else ""

    def wait_text(self, css, pred, timeout=30):
        deadline = time.time() + timeout
        t = ""
        while time.time() < deadline:
            t = self.text(css) or ""
            if pred(t):
                return t
            time.sleep(0.3)
        return t

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.cmd("GET", "/screenshot")))

    def quit(self):
        try:
            requests.delete(self.s, timeout=30)
        finally:
            self.driver.terminate()
            self.driver.wait(timeout=30)


b = Browser()
try:
    b.go(url + "/#jobs")
    check(path_of(b.url()) == "/login", f"without the token the dashboard redirects to /login (at {b.url()})")
    b.go(url + "/static/app.js")
    check(path_of(b.url()) == "/login", "without the token the script redirects to /login too")

    b.go(url + "/login")
    e = b.find("#token")
    b.cmd("POST", f"/element/{e}/value", {"text": "not-the-token"})
    b.cmd("POST", f"/element/{b.find('#login')}/click")
    b.wait_text("#failed", lambda t: "not the cluster's" in t, timeout=10)
    check(b.url().endswith("/login?failed=1") and "not the cluster's" in b.text("#failed"),
          "a wrong token stays on the login page with an error")

    e = b.find("#token")
    b.cmd("POST", f"/element/{e}/value", {"text": token})
    b.cmd("POST", f"/element/{b.find('#login')}/click")
    b.wait_text("#tabs", lambda t: "Overview" in t, timeout=10)
    check(path_of(b.url()) == "/", f"logging in opens the dashboard (at {b.url()})")
    alive = b.wait_text("#card-nodes", lambda t: t.startswith(nodes))
    check(alive.startswith(nodes), f"the overview shows {nodes} nodes alive (shows {alive!r})")
    rows = b.wait_text("#nodes-table", lambda t: t.count("ALIVE") >= int(nodes))
    check(rows.count("ALIVE") >= int(nodes), f"the node table lists {nodes} ALIVE nodes")
    time.sleep(5)  # a few samples on the usage chart
    b.screenshot(shot.replace(".png", "-overview.png"))

    b.go(url + "/#jobs")
    jobs = b.wait_text("#jobs-table", lambda t: job_id in t and "RUNNING" in t)
    check(job_id in jobs and "RUNNING" in jobs, f"the jobs tab shows job {job_id} RUNNING")
    # The table is drawn again every 2 s: a button found just before a redraw is gone when the
    # click arrives (a stale element, and nothing opens), so a user's second click is allowed.
    logs, found = "", False
    for _ in range(5):
        button = b.find(f'tr[data-id="{job_id}"] .logs-link')
        if not button:
            time.sleep(0.5)
            continue
        found = True
        b.cmd("POST", f"/element/{button}/click")
        logs = b.wait_text("#job-logs-text", lambda t: marker in t, timeout=8)
        if marker in logs:
            break
    check(found, "the job has a logs button")
    check(marker in logs, f"the job's logs show {marker!r} (show {logs[:200]!r})")
    b.screenshot(shot)
    check(os.path.getsize(shot) > 10000, f"a screenshot was kept at {shot}")

    b.go(url + "/#tasks")
    tasks = b.wait_text("#tasks-table", lambda t: "FINISHED" in t)
    check("FINISHED" in tasks, "the tasks tab lists finished tasks")
    b.go(url + "/#events")
    events = b.wait_text("#events-table", lambda t: "NODE_ADDED" in t)
    check("NODE_ADDED" in events, "the cluster events tab lists the nodes joining")
    b.go(url + "/logout")
    b.go(url + "/#overview")
    check(path_of(b.url()) == "/login", "after logging out the dashboard redirects to /login again")
finally:
    b.quit()
print(f"browser: {len(failures)} failed")
sys.exit(1 if failures else 0)
