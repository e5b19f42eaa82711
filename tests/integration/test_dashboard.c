/*
 * The head's HTTP endpoint (issue 15) on a real 2-node cluster (a head and a node joining it on
 * this machine): the Jobs REST API driven with python3-requests as Ray's documentation does it
 * (tests/dashboard/jobs_rest.py), the same API and the state API with curl, every route refused
 * without the token, and the dashboard in headless Chromium through chromedriver
 * (tests/dashboard/browser.py): log in with the token, see both nodes and a running job, open its
 * logs. The screenshot is kept as <build>/test-artifacts/dashboard-job-logs.png.
 */
#include "itest.h"
#include "itest_sh.h"

#include <jansson.h>
#include <sys/stat.h>
#include <time.h>

static char dash[128], joiner[700], token_file[700];

/* curl with the bearer token; returns the HTTP status, *out the body (new). */
static int curl_auth(char **out, const char *method, const char *path, const char *body)
{
  char *text = NULL;
  int rc = it_sh(&text,
                 "curl -s -o /dev/stdout -w '\\n%%{http_code}' -X %s -H \"Authorization: Bearer $(cat %s)\" "
                 "%s%s%s%s http://%s%s",
                 method, token_file, body ? "-H 'Content-Type: application/json' --data '" : "", body ? body : "",
                 body ? "'" : "", "", dash, path);
  ck_assert_msg(rc == 0, "curl %s %s failed (%d): %s", method, path, rc, text);
  char *nl = strrchr(text, '\n');
  int code = nl ? atoi(nl + 1) : 0;
  if (nl)
    *nl = '\0';
  if (out)
    *out = text;
  else
    free(text);
  return code;
}

static int curl_code(const char *method, const char *path, const char *extra)
{
  char *out = NULL;
  it_sh(&out, "curl -s -o /dev/null -w '%%{http_code}' -X %s %s http://%s%s", method, extra ? extra : "", dash, path);
  int code = atoi(out);
  free(out);
  return code;
}

START_TEST(routes_need_the_token)
{
  const char *routes[][2] = {{"GET", "/api/version"},
                             {"GET", "/api/jobs/"},
                             {"POST", "/api/jobs/"},
                             {"GET", "/api/jobs/x"},
                             {"GET", "/api/jobs/x/logs"},
                             {"POST", "/api/jobs/x/stop"},
                             {"DELETE", "/api/jobs/x"},
                             {"GET", "/api/v0/nodes"},
                             {"GET", "/api/v0/tasks"},
                             {"GET", "/api/v0/timeline"},
                             {"GET", "/api/v0/logs"},
                             {"PUT", "/api/packages/gcs/a.zip"},
                             {"GET", "/api/v0/logs/file?file=gcs.log"}};
  for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
    int code = curl_code(routes[i][0], routes[i][1], NULL);
    ck_assert_msg(code == 401, "%s %s without the token: %d", routes[i][0], routes[i][1], code);
    code = curl_code(routes[i][0], routes[i][1], "-H 'Authorization: Bearer not-the-token'");
    ck_assert_msg(code == 401, "%s %s with a wrong token: %d", routes[i][0], routes[i][1], code);
  }
  const char *pages[] = {"/", "/index.html", "/static/app.js", "/logout"};
  for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
    int code = curl_code("GET", pages[i], NULL);
    ck_assert_msg(code == 303, "GET %s without the token: %d (want a redirect to /login)", pages[i], code);
  }
  ck_assert_int_eq(curl_code("GET", "/login", NULL), 200);
  /* a cookie-authenticated POST needs the CSRF header; a forged cookie is nothing */
  ck_assert_int_eq(curl_code("POST", "/api/jobs/", "-H 'Cookie: rayc_session=forged' -H 'X-Rayc-CSRF: 1'"), 401);
  char *cookie = NULL;
  ck_assert_int_eq(it_sh(&cookie,
                         "curl -s -i -X POST --data-urlencode \"token=$(cat %s)\" http://%s/login | "
                         "sed -n 's/^Set-Cookie: \\(rayc_session=[0-9a-f]*\\);.*HttpOnly; SameSite=Strict.*/\\1/p'",
                         token_file, dash),
                   0);
  cookie[strcspn(cookie, "\r\n")] = '\0';
  ck_assert_msg(strlen(cookie) > 20, "POST /login set no HttpOnly SameSite=Strict cookie");
  char hdr[256];
  snprintf(hdr, sizeof(hdr), "-H 'Cookie: %s'", cookie);
  ck_assert_int_eq(curl_code("GET", "/api/v0/nodes", hdr), 200);
  ck_assert_int_eq(curl_code("POST", "/api/jobs/x/stop", hdr), 401); /* no CSRF header */
  snprintf(hdr, sizeof(hdr), "-H 'Cookie: %s' -H 'X-Rayc-CSRF: 1'", cookie);
  ck_assert_int_eq(curl_code("POST", "/api/jobs/x/stop", hdr), 404); /* through, and no such job */
  free(cookie);
}
END_TEST

START_TEST(state_api_as_json)
{
  char *out = NULL;
  ck_assert_int_eq(curl_auth(&out, "GET", "/api/v0/nodes", NULL), 200);
  json_t *v = json_loads(out, 0, NULL);
  ck_assert_msg(v, "not JSON: %s", out);
  json_t *rows = json_object_get(json_object_get(json_object_get(v, "data"), "result"), "result");
  ck_assert_int_eq(json_array_size(rows), 2);
  json_decref(v);
  free(out);
  ck_assert_int_eq(curl_auth(&out, "GET", "/api/v0/nope", NULL), 404);
  free(out);
  ck_assert_int_eq(curl_auth(&out, "GET", "/api/v0/logs/file?file=../cluster_token", NULL), 400);
  free(out);
  ck_assert_int_eq(curl_auth(&out, "GET", "/api/v0/tasks?filter=nofilter", NULL), 400);
  free(out);
}
END_TEST

START_TEST(jobs_api_as_rays_docs_use_it)
{
  char *out = NULL;
  int rc = it_sh(&out, "/usr/bin/python3 %s/../../tests/dashboard/jobs_rest.py http://%s %s %s", it_build, dash,
                 token_file, it_temp);
  ck_assert_msg(rc == 0, "tests/dashboard/jobs_rest.py (%d):\n%s", rc, out);
  free(out);
  /* curl, as Ray's docs show it too: submit, poll, logs */
  ck_assert_int_eq(curl_auth(&out, "POST", "/api/jobs/",
                             "{\"entrypoint\": \"echo curl-was-here\", \"submission_id\": \"curl-job\"}"),
                   200);
  ck_assert_msg(strstr(out, "\"job_id\":\"curl-job\""), "%s", out);
  free(out);
  int done = 0;
  for (int i = 0; i < 200 && !done; i++) {
    ck_assert_int_eq(curl_auth(&out, "GET", "/api/jobs/curl-job", NULL), 200);
    done = strstr(out, "\"status\":\"SUCCEEDED\"") != NULL;
    free(out);
    if (!done)
      it_sleep_ms(300);
  }
  ck_assert_msg(done, "curl-job did not succeed");
  ck_assert_int_eq(curl_auth(&out, "GET", "/api/jobs/curl-job/logs", NULL), 200);
  ck_assert_msg(strstr(out, "curl-was-here"), "%s", out);
  free(out);
}
END_TEST

START_TEST(dashboard_in_chromium)
{
  it_connect(); /* some finished tasks for the tasks tab */
  rayc_ref r[3];
  int rc;
  for (int64_t i = 0; i < 3; i++) {
    rayc_arg a[2] = {RAYC_ARG_VAL(&i, sizeof(i)), RAYC_ARG_VAL(&i, sizeof(i))};
    ck_assert_int_eq(rayc_remote("add", a, 2, NULL, &r[i]), 0);
  }
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(it_get_i64(&r[i], &rc), 2 * i);
    rayc_ref_release(&r[i]);
  }
  rayc_shutdown();
  char *out = NULL, shot[1200];
  ck_assert_int_eq(
      curl_auth(&out, "POST", "/api/jobs/",
                "{\"entrypoint\": \"echo DASHBOARD-LOG-MARKER; sleep 600\", \"submission_id\": \"browser-job\"}"),
      200);
  free(out);
  snprintf(shot, sizeof(shot), "%s/test-artifacts", it_build);
  mkdir(shot, 0755);
  snprintf(shot, sizeof(shot), "%s/test-artifacts/dashboard-job-logs.png", it_build);
  rc = it_sh(&out,
             "/usr/bin/python3 %s/../../tests/dashboard/browser.py http://%s %s %s 2 browser-job DASHBOARD-LOG-MARKER",
             it_build, dash, token_file, shot);
  ck_assert_msg(rc == 0, "tests/dashboard/browser.py (%d):\n%s", rc, out);
  free(out);
  ck_assert_int_eq(curl_auth(&out, "POST", "/api/jobs/browser-job/stop", NULL), 200);
  free(out);
}
END_TEST

/* Starts the head (with its dashboard on an ephemeral port) and a second node joining it. */
static int dash_cluster_start(void)
{
  if (it_start("libtest_tasks.so", "--num-cpus 2 --object-store-memory 100M --dashboard-port 0") != 0)
    return -1;
  char path[700], cmd[4096];
  snprintf(path, sizeof(path), "%s/session_latest/dashboard_address", it_temp);
  FILE *f = fopen(path, "r");
  if (!f || !fgets(dash, sizeof(dash), f))
    return -1;
  fclose(f);
  dash[strcspn(dash, "\n")] = '\0';
  snprintf(token_file, sizeof(token_file), "%s/cluster_token", it_temp);
  snprintf(joiner, sizeof(joiner), "%s/joiner", it_temp);
  mkdir(joiner, 0700);
  /* it_sh asserts, and no test runs yet: plain it_run */
  snprintf(cmd, sizeof(cmd),
           "%s/bin/rayc start --address %s --temp-dir %s --num-cpus 1 --object-store-memory 80M "
           "--token-file %s > %s/join.out 2>&1 || { cat %s/join.out; false; }",
           it_build, it_address, joiner, token_file, it_temp, it_temp);
  return it_run(cmd) == 0 ? 0 : -1;
}

int main(void)
{
  if (dash_cluster_start() != 0) {
    fprintf(stderr, "cannot start the 2-node cluster\n");
    return 1;
  }
  Suite *s = suite_create("dashboard");
  TCase *tc = tcase_create("dashboard");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, routes_need_the_token);
  tcase_add_test(tc, state_api_as_json);
  tcase_add_test(tc, jobs_api_as_rays_docs_use_it);
  tcase_add_test(tc, dashboard_in_chromium);
  suite_add_tcase(s, tc);
  char cmd[2400];
  snprintf(cmd, sizeof(cmd), "%s/bin/rayc stop --temp-dir %s > /dev/null", it_build, joiner);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  it_run(cmd);
  failed += it_stop();
  return failed ? 1 : 0;
}
