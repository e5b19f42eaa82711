/*
 * The metrics registry (common/metrics.c) and protobuf messages as JSON (common/pb_json.c):
 * what a scraper and a JSON reader see.
 */
#include "common/metrics.h"
#include "common/pb_json.h"
#include "proto/gcs.pb-c.h"
#include "proto/gcs_task.pb-c.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(counter_with_escaped_labels)
{
  metrics_family_t *f = metrics_family("test_requests_total", METRICS_COUNTER, "Requests, by path.", "Path,Code");
  metrics_series_t *s = metrics_series2(f, "/a\"b\\c\nd", "200");
  metrics_add(s, 2);
  metrics_add(s, -5);                                       /* a counter never goes down... */
  metrics_add(metrics_series2(f, "/a\"b\\c\nd", "200"), 1); /* ...and the same values are the same series */
  ck_assert(metrics_value(s) == 3);
  char *text = metrics_render(NULL);
  ck_assert_msg(strstr(text, "# HELP test_requests_total Requests, by path.\n# TYPE test_requests_total counter\n"),
                "%s", text);
  ck_assert_msg(strstr(text, "test_requests_total{Path=\"/a\\\"b\\\\c\\nd\",Code=\"200\"} "), "%s", text);
  free(text);
}
END_TEST

START_TEST(counters_never_go_down)
{
  metrics_series_t *s = metrics_series0(metrics_family("test_down_total", METRICS_COUNTER, "x", NULL));
  metrics_add(s, 4);
  metrics_add(s, -1);
  ck_assert(metrics_value(s) == 4);
}
END_TEST

START_TEST(histogram_buckets_are_cumulative)
{
  metrics_series_t *h = metrics_series1(metrics_family("test_seconds", METRICS_HISTOGRAM, "Latency.", "Method"), "m");
  metrics_observe(h, 0.00005);
  metrics_observe(h, 0.003);
  metrics_observe(h, 100);
  char *text = metrics_render(NULL);
  ck_assert_msg(strstr(text, "test_seconds_bucket{Method=\"m\",le=\"0.0001\"} 1\n"), "%s", text);
  ck_assert_msg(strstr(text, "test_seconds_bucket{Method=\"m\",le=\"0.005\"} 2\n"), "%s", text);
  ck_assert_msg(strstr(text, "test_seconds_bucket{Method=\"m\",le=\"10\"} 2\n"), "%s", text);
  ck_assert_msg(strstr(text, "test_seconds_bucket{Method=\"m\",le=\"+Inf\"} 3\n"), "%s", text);
  ck_assert_msg(strstr(text, "test_seconds_count{Method=\"m\"} 3\n"), "%s", text);
  free(text);
}
END_TEST

START_TEST(gauge_rebuilt_from_a_snapshot)
{
  metrics_family_t *f = metrics_family("test_things", METRICS_GAUGE, "Things.", "State");
  metrics_set(metrics_series1(f, "A"), 3);
  metrics_set(metrics_series1(f, "B"), 4);
  metrics_family_clear(f);
  metrics_set(metrics_series1(f, "B"), 5);
  char *text = metrics_render(NULL);
  ck_assert_msg(!strstr(text, "test_things{State=\"A\"}") && strstr(text, "test_things{State=\"B\"} 5\n"), "%s", text);
  free(text);
}
END_TEST

START_TEST(the_text_passes_promtool)
{
  metrics_process_enable();
  metrics_set(metrics_series0(metrics_family("test_level", METRICS_GAUGE, "A level.", NULL)), 1.5);
  char *text = metrics_render(NULL);
  ck_assert_msg(strstr(text, "process_resident_memory_bytes "), "%s", text);
  char path[] = "/tmp/rayc-metrics-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  FILE *f = fdopen(fd, "w");
  fputs(text, f);
  fclose(f);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "promtool check metrics < %s >&2", path);
  int st = system(cmd);
  if (st == 0)
    unlink(path);
  ck_assert_msg(st == 0, "promtool check metrics refused (%d) %s:\n%s", st, path, text);
  free(text);
}
END_TEST

/* The value after "name " in text; -1 when the sample is missing. */
static double sample_of(const char *text, const char *name)
{
  char key[128];
  snprintf(key, sizeof(key), "\n%s ", name);
  const char *p = strstr(text, key);
  return p ? strtod(p + strlen(key), NULL) : -1;
}

/* The node's gauges are read from /proc when rendered: present at the first render (once the
 * machine's CPU ticks moved since metrics_node_enable), the CPU use
 * in 0..100 and the memory in use below the machine's, and a render less than a second after the
 * last sample keeps the same CPU figure (no busy loop of samples between scrapes). */
START_TEST(node_gauges_read_when_rendered)
{
  metrics_node_enable();
  for (volatile long i = 0; i < 50000000; i++) /* busy, so that the machine's CPU ticks move on */
    ;
  char *text = metrics_render(NULL);
  double cpu = sample_of(text, "rayc_node_cpu_utilization"), cap = sample_of(text, "rayc_node_mem_capacity"),
         used = sample_of(text, "rayc_node_mem_used");
  ck_assert_msg(cpu >= 0 && cpu <= 100, "rayc_node_cpu_utilization %g in:\n%s", cpu, text);
  ck_assert_msg(cap > 0 && used > 0 && used < cap, "memory %g of %g", used, cap);
  for (volatile long i = 0; i < 20000000; i++) /* busy for a while: the CPU use moves if resampled */
    ;
  char *again = metrics_render(NULL);
  ck_assert_msg(sample_of(again, "rayc_node_cpu_utilization") == cpu, "resampled within a second");
  free(again);
  free(text);
}
END_TEST

START_TEST(messages_as_json)
{
  Rayc__NodeInfo n = RAYC__NODE_INFO__INIT;
  Rayc__ResourceEntry cpu = RAYC__RESOURCE_ENTRY__INIT, *res[1] = {&cpu};
  uint8_t id[3] = {0x0a, 0xbc, 0xff};
  cpu.name = (char *)"CPU";
  cpu.amount = 2;
  n.node_id.data = id;
  n.node_id.len = 3;
  n.ip = (char *)"10.0.0.1";
  n.resources_total = res;
  n.n_resources_total = 1;
  n.state = RAYC__NODE_STATE__NODE_DEAD;
  n.is_head = 1;
  json_t *j = pb_json_from_message(&n.base);
  ck_assert_str_eq(json_string_value(json_object_get(j, "node_id")), "0abcff");
  ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "NODE_DEAD");
  ck_assert(json_is_true(json_object_get(j, "is_head")));
  ck_assert(json_real_value(json_object_get(json_object_get(j, "resources_total"), "CPU")) == 2);
  ck_assert(json_is_array(json_object_get(j, "labels")) || json_is_object(json_object_get(j, "labels")));
  json_decref(j);
  Rayc__TaskEvent ev = RAYC__TASK_EVENT__INIT;
  ev.name = (char *)"caf\xc3\xa9"; /* UTF-8 passes; the reply stays valid JSON */
  ev.time_us = 1796400000000000;
  j = pb_json_from_message(&ev.base);
  ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "caf\xc3\xa9");
  ck_assert(json_integer_value(json_object_get(j, "time_us")) == 1796400000000000);
  json_decref(j);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("metrics");
  TCase *tc = tcase_create("metrics");
  tcase_add_test(tc, counter_with_escaped_labels);
  tcase_add_test(tc, counters_never_go_down);
  tcase_add_test(tc, histogram_buckets_are_cumulative);
  tcase_add_test(tc, gauge_rebuilt_from_a_snapshot);
  tcase_add_test(tc, the_text_passes_promtool);
  tcase_add_test(tc, messages_as_json);
  tcase_add_test(tc, node_gauges_read_when_rendered);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
