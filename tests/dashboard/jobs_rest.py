#!/usr/bin/python3
"""The Jobs REST API as Ray's documentation drives it (python3-requests), against rayc-dashboard.

Usage: jobs_rest.py URL TOKEN_FILE WORKDIR. Exits 0 when every check passed; prints what failed.
Steps: without the token every route is 401; a working dir zipped as Ray's client does is
uploaded (GET 404 -> PUT -> GET 200) and a job using it is submitted, polled to SUCCEEDED and its
logs read; a long job is stopped (STOPPED); both are listed; one is deleted (then 404).
"""
import io
import json
import sys
import time
import zipfile

import requests

url, token_file, workdir = sys.argv[1], sys.argv[2], sys.argv[3]
token = open(token_file).read().strip()
auth = {"Authorization": "Bearer " + token}
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def wait_status(job_id, want, timeout=60):
    deadline = time.time() + timeout
    status = None
    while time.time() < deadline:
        resp = requests.get(f"{url}/api/jobs/{job_id}", headers=auth)
        status = json.loads(resp.text)["status"]
        if status in want:
            return status
        time.sleep(0.3)
    return status


# Nothing without the token (every route but the login page).
for method, path in [("GET", "/api/version"), ("GET", "/api/jobs/"), ("POST", "/api/jobs/"),
                     ("GET", "/api/jobs/x"), ("GET", "/api/jobs/x/logs"), ("POST", "/api/jobs/x/stop"),
                     ("DELETE", "/api/jobs/x"), ("PUT", "/api/packages/gcs/p.zip"), ("GET", "/api/v0/nodes")]:
    r = requests.request(method, url + path, json={"entrypoint": "true"})
    check(r.status_code == 401, f"{method} {path} without the token is 401 (got {r.status_code})")
r = requests.get(url + "/api/jobs/", headers={"Authorization": "Bearer wrong"})
check(r.status_code == 401, f"a wrong bearer token is 401 (got {r.status_code})")
r = requests.get(url + "/", allow_redirects=False)
check(r.status_code in (302, 303) and r.headers.get("Location") == "/login", "the dashboard page redirects to /login")
check(requests.get(url + "/login").status_code == 200, "the login page is served without the token")

r = requests.get(url + "/api/version", headers=auth)
check(r.status_code == 200 and r.json()["ray_version"] >= "2", f"/api/version: {r.text}")

# A working dir, zipped as Ray's JobSubmissionClient uploads it, then used by a job.
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("hello.sh", "echo hello from the working dir: $(cat data.txt)\n")
    z.writestr("data.txt", "forty-two")
pkg = "gcs://_ray_pkg_obs_test.zip"
r = requests.get(url + "/api/packages/gcs/_ray_pkg_obs_test.zip", headers=auth)
check(r.status_code == 404, f"an unknown package is 404 (got {r.status_code})")
r = requests.put(url + "/api/packages/gcs/_ray_pkg_obs_test.zip", headers=auth, data=buf.getvalue())
check(r.status_code == 200, f"PUT the package: {r.status_code} {r.text}")
r = requests.get(url + "/api/packages/gcs/_ray_pkg_obs_test.zip", headers=auth)
check(r.status_code == 200, f"the uploaded package is there (got {r.status_code})")

resp = requests.post(url + "/api/jobs/", headers=auth, json={
    "entrypoint": "sh hello.sh && echo env=$GREETING",
    "runtime_env": {"working_dir": pkg, "env_vars": {"GREETING": "hi"}},
    "metadata": {"owner": "obs-test"},
})
check(resp.status_code == 200, f"submit: {resp.status_code} {resp.text}")
rst = json.loads(resp.text)
job_id = rst["job_id"]
check(rst["submission_id"] == job_id, "job_id and submission_id agree")
status = wait_status(job_id, ("SUCCEEDED", "FAILED", "STOPPED"))
check(status == "SUCCEEDED", f"the job ended SUCCEEDED (got {status})")
resp = requests.get(f"{url}/api/jobs/{job_id}/logs", headers=auth)
logs = json.loads(resp.text)["logs"]
check("hello from the working dir: forty-two" in logs and "env=hi" in logs, f"its logs: {logs!r}")
info = requests.get(f"{url}/api/jobs/{job_id}", headers=auth).json()
check(info["metadata"] == {"owner": "obs-test"} and info["driver_exit_code"] == 0 and info["end_time"],
      f"its details: {info}")

# A long job, stopped.
resp = requests.post(url + "/api/jobs/", headers=auth, json={"entrypoint": "echo started; sleep 300",
                                                             "submission_id": "obs-long-job"})
check(resp.status_code == 200 and resp.json()["job_id"] == "obs-long-job", f"submit with an id: {resp.text}")
check(wait_status("obs-long-job", ("RUNNING",)) == "RUNNING", "the long job runs")
resp = requests.post(url + "/api/jobs/obs-long-job/stop", headers=auth)
check(resp.status_code == 200 and json.loads(resp.text)["stopped"] is True, f"stop: {resp.text}")
check(wait_status("obs-long-job", ("STOPPED", "FAILED", "SUCCEEDED")) == "STOPPED", "the stopped job is STOPPED")

jobs = requests.get(url + "/api/jobs/", headers=auth).json()
ids = {j["submission_id"] for j in jobs}
check({job_id, "obs-long-job"} <= ids, f"both jobs are listed: {ids}")
resp = requests.delete(f"{url}/api/jobs/{job_id}", headers=auth)
check(resp.status_code == 200 and resp.json()["deleted"] is True, f"delete: {resp.text}")
check(requests.get(f"{url}/api/jobs/{job_id}", headers=auth).status_code == 404, "a deleted job is 404")
resp = requests.post(url + "/api/jobs/", headers=auth, json={"entrypoint": "true", "runtime_env": {"working_dir": "/local/dir"}})
check(resp.status_code == 400 and "not an uploaded package" in resp.text, f"a local working dir is refused: {resp.text}")
resp = requests.post(url + "/api/jobs/", headers=auth, data="{not json")
check(resp.status_code == 400, f"a malformed body is 400 (got {resp.status_code})")

print(f"jobs REST: {len(failures)} failed")
sys.exit(1 if failures else 0)
