/* Unit tests for common/status.c: every RAYC_E* code has a name and a message, and the gRPC
 * mapping round-trips for the codes it maps. */
#include "common/status.h"

#include <check.h>
#include <errno.h>
#include <grpc/status.h>
#include <string.h>

static const struct {
  int code, spelled; /* the map's value; the enum's RAYC_E<NAME> */
  const char *name, *msg;
} codes[] = {
#define ROW(name, val, msg) {val, RAYC_E##name, #name, msg},
    RAYC_ERRNO_MAP(ROW)
#undef ROW
};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

START_TEST(test_names_and_messages)
{
  for (size_t i = 0; i < NCODES; i++) {
    ck_assert_int_lt(codes[i].code, -1000); /* never collides with a negative errno */
    ck_assert_int_eq(codes[i].spelled, codes[i].code);
    ck_assert_str_eq(rayc_err_name(codes[i].code), codes[i].name);
    ck_assert_str_eq(rayc_strerror(codes[i].code), codes[i].msg);
    ck_assert_str_ne(rayc_strerror(codes[i].code), "unknown error");
    for (size_t j = 0; j < i; j++)
      ck_assert_int_ne(codes[i].code, codes[j].code);
  }
  ck_assert_str_eq(rayc_err_name(0), "OK");
  ck_assert_str_eq(rayc_strerror(0), "success");
  ck_assert_str_eq(rayc_err_name(-999999), "UNKNOWN");
  ck_assert_str_eq(rayc_strerror(-999999), "unknown error");
  ck_assert_str_eq(rayc_strerror(-ENOENT), strerror(ENOENT)); /* negative errno values too */
  ck_assert_str_eq(rayc_err_name(RAYC_ETIMEOUT), "TIMEOUT");
}
END_TEST

START_TEST(test_grpc_round_trip)
{
  ck_assert_int_eq(status_to_grpc(0), GRPC_STATUS_OK);
  ck_assert_int_eq(status_from_grpc(GRPC_STATUS_OK), 0);
  int mapped = 0;
  for (size_t i = 0; i < NCODES; i++) {
    int g = status_to_grpc(codes[i].code);
    ck_assert_int_ne(g, GRPC_STATUS_OK); /* an error never becomes OK */
    if (g == GRPC_STATUS_UNKNOWN)
      continue;
    mapped++;
    ck_assert_msg(status_from_grpc(g) == codes[i].code, "%s -> grpc %d -> %s", codes[i].name, g,
                  rayc_err_name(status_from_grpc(g)));
  }
  ck_assert_int_ge(mapped, 10);
  ck_assert_int_eq(status_to_grpc(RAYC_EINVALID_ARGUMENT), GRPC_STATUS_INVALID_ARGUMENT);
  ck_assert_int_eq(status_to_grpc(RAYC_EUNAVAILABLE), GRPC_STATUS_UNAVAILABLE);
  ck_assert_int_eq(status_to_grpc(RAYC_ETIMEOUT), GRPC_STATUS_DEADLINE_EXCEEDED);
  ck_assert_int_eq(status_to_grpc(-ENOENT), GRPC_STATUS_UNKNOWN);
  /* Every gRPC code maps to some error, never to success. */
  for (int g = 1; g <= GRPC_STATUS_UNAUTHENTICATED; g++)
    ck_assert_int_lt(status_from_grpc(g), 0);
}
END_TEST

static Suite *status_suite(void)
{
  Suite *s = suite_create("status");
  TCase *tc = tcase_create("status");
  tcase_add_test(tc, test_names_and_messages);
  tcase_add_test(tc, test_grpc_round_trip);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(status_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
