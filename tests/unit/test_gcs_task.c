/*
 * Unit tests of the GCS's task records (gcs/gcs_task.c) through AddTaskEventData and
 * GetTaskEvents on a real in-process rayc-gcs (loop thread, ephemeral port on 127.0.0.1): the
 * bounded ring keeps the newest records in order and counts the dropped, and a later event of a
 * record still held merges into it (found through the index after many drops) instead of making
 * a second record.
 */
#include "common/ids.h"
#include "common/log.h"
#include "common/pb.h"
#include "common/rpc.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_server.h"
#include "tests/helpers/gcs_inproc.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Starts a GCS keeping at most max task records. */
static void start_gcs(const char *max)
{
  char opt[64];
  snprintf(opt, sizeof(opt), "--task-events-max=%s", max);
  char *argv[] = {(char *)"rayc-gcs", (char *)"--port=0", opt, NULL};
  gcs_inproc_start(3, argv);
}

static void stop_gcs(void)
{
  gcs_inproc_stop();
}

/* Task number k's id: k in the first bytes, the rest fixed (a job id at the end). */
static void task_id(int k, uint8_t *id)
{
  memset(id, 0x5a, ID_TASK_SIZE);
  memcpy(id, &k, sizeof(k));
}

/* Reports state for tasks first..last (one event each, named "f<k % 3>") in one request. */
static void report(int first, int last, Rayc__TaskStatus state)
{
  size_t n = (size_t)(last - first + 1);
  Rayc__TaskEvent *evs = xcalloc(n, sizeof(*evs));
  Rayc__TaskEvent **ptrs = xcalloc(n, sizeof(*ptrs));
  uint8_t(*ids)[ID_TASK_SIZE] = xcalloc(n, ID_TASK_SIZE);
  char names[3][8] = {"f0", "f1", "f2"};
  for (size_t i = 0; i < n; i++) {
    int k = first + (int)i;
    rayc__task_event__init(&evs[i]);
    task_id(k, ids[i]);
    evs[i].task_id = pb_bytes(ids[i], ID_TASK_SIZE);
    evs[i].name = names[k % 3];
    evs[i].state = state;
    evs[i].time_us = 1000 + k;
    ptrs[i] = &evs[i];
  }
  Rayc__AddTaskEventDataRequest req = RAYC__ADD_TASK_EVENT_DATA_REQUEST__INIT;
  req.events = ptrs;
  req.n_events = n;
  ProtobufCMessage *resp = NULL;
  ck_assert_int_eq(rpc_call_sync(channel, &rayc__task_info_gcs_service__descriptor, "AddTaskEventData", &req.base,
                                 10000, &resp, NULL),
                   0);
  pb_free(resp);
  free(ids);
  free(ptrs);
  free(evs);
}

/* Returns every record (new; free with pb_free). */
static Rayc__GetTaskEventsReply *records(void)
{
  Rayc__GetTaskEventsRequest req = RAYC__GET_TASK_EVENTS_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  ck_assert_int_eq(
      rpc_call_sync(channel, &rayc__task_info_gcs_service__descriptor, "GetTaskEvents", &req.base, 10000, &resp, NULL),
      0);
  return (Rayc__GetTaskEventsReply *)resp;
}

static int record_task(const Rayc__TaskRecord *r)
{
  int k;
  ck_assert_uint_eq(r->task_id.len, ID_TASK_SIZE);
  memcpy(&k, r->task_id.data, sizeof(k));
  return k;
}

START_TEST(the_newest_records_are_kept_in_order)
{
  start_gcs("5");
  report(1, 12, RAYC__TASK_STATUS__SUBMITTED_TO_WORKER);
  report(10, 10, RAYC__TASK_STATUS__FINISHED); /* still held: merges */
  Rayc__GetTaskEventsReply *rep = records();
  ck_assert_uint_eq(rep->n_tasks, 5);
  ck_assert_int_eq(rep->num_dropped, 7);
  for (int i = 0; i < 5; i++) {
    ck_assert_int_eq(record_task(rep->tasks[i]), 8 + i);
    ck_assert_str_eq(rep->tasks[i]->name, (8 + i) % 3 == 0 ? "f0" : (8 + i) % 3 == 1 ? "f1" : "f2");
    ck_assert_int_eq(rep->tasks[i]->state,
                     8 + i == 10 ? RAYC__TASK_STATUS__FINISHED : RAYC__TASK_STATUS__SUBMITTED_TO_WORKER);
  }
  pb_free(&rep->base);
  report(3, 3, RAYC__TASK_STATUS__FINISHED); /* dropped before: a new record, the oldest (8) goes */
  rep = records();
  ck_assert_uint_eq(rep->n_tasks, 5);
  ck_assert_int_eq(rep->num_dropped, 8);
  ck_assert_int_eq(record_task(rep->tasks[0]), 9);
  ck_assert_int_eq(record_task(rep->tasks[4]), 3);
  ck_assert_int_eq(rep->tasks[4]->state, RAYC__TASK_STATUS__FINISHED);
  pb_free(&rep->base);
  stop_gcs();
}
END_TEST

/* 5,000 records through a ring of 1,000 (the index loses and shifts entries 4,000 times), then
 * every held record's end: each must merge into its record, none may make a second one. */
START_TEST(records_held_after_many_drops_still_merge)
{
  start_gcs("1000");
  for (int k = 0; k < 5000; k += 500)
    report(k, k + 499, RAYC__TASK_STATUS__SUBMITTED_TO_WORKER);
  report(4000, 4999, RAYC__TASK_STATUS__FINISHED);
  Rayc__GetTaskEventsReply *rep = records();
  ck_assert_uint_eq(rep->n_tasks, 1000);
  ck_assert_int_eq(rep->num_total, 1000);
  ck_assert_int_eq(rep->num_dropped, 4000);
  for (size_t i = 0; i < rep->n_tasks; i++) {
    ck_assert_int_eq(record_task(rep->tasks[i]), 4000 + (int)i);
    ck_assert_int_eq(rep->tasks[i]->state, RAYC__TASK_STATUS__FINISHED);
    ck_assert_int_eq(rep->tasks[i]->submitted_us, 1000 + 4000 + (int)i);
  }
  pb_free(&rep->base);
  stop_gcs();
}
END_TEST

int main(void)
{
  Suite *s = suite_create("gcs_task");
  TCase *tc = tcase_create("records");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, the_newest_records_are_kept_in_order);
  tcase_add_test(tc, records_held_after_many_drops_still_merge);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
