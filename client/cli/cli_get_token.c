/*
 * rayc get-token: prints the cluster token, found by the rule every rayc
 * command and driver uses (common/token.h), and says on stderr where it came
 * from. The only command that ever prints the token: run it to copy the token
 * into a secret store or to another machine's RAYC_TOKEN.
 */
#include "client/cli/cli.h"

#include "common/util.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct cli_token_conf {
  char *temp_dir;
  int quiet;
  cli_sec_t sec;
} cli_token_conf_t;

#define F(field) offsetof(cli_token_conf_t, field)
static const cfg_entry_t cli_token_table[] = {
    {"temp-dir", CFG_STRING, F(temp_dir), "/tmp/rayc", "where sessions and <temp-dir>/cluster_token live"},
    {"quiet", CFG_BOOL, F(quiet), "false", "print only the token (not where it came from)"},
    CLI_SEC_SETTINGS(cli_token_conf_t, sec),
};
#undef F

static const char cli_token_summary[] = "Prints the cluster token on stdout (and where it came from on stderr): "
                                        "from --token-file or\n"
                                        "RAYC_TOKEN_FILE, else RAYC_TOKEN, else "
                                        "<temp-dir>/session_latest/cluster_token, else\n"
                                        "<temp-dir>/cluster_token. Treat the output as a password.";

int cli_get_token(int argc, char **argv)
{
  cli_token_conf_t c;
  int status = cli_parse("get-token", cli_token_summary, cli_token_table, ARRAY_LEN(cli_token_table), &c, sizeof(c),
                         argc, argv);
  if (status != CLI_CONTINUE)
    return status;
  cli_auth_t auth;
  status = CLI_FAIL;
  if (cli_auth_init(&auth, &c.sec, c.temp_dir, "get-token") == 0) {
    if (!auth.token) {
      fprintf(stderr, "rayc get-token: %s\n", auth.where);
    } else {
      if (!c.quiet)
        fprintf(stderr, "rayc get-token: the token from %s\n", auth.where);
      printf("%s\n", auth.token);
      fflush(stdout);
      status = CLI_OK;
    }
  }
  cli_auth_release(&auth);
  cfg_release(cli_token_table, ARRAY_LEN(cli_token_table), &c);
  return status;
}
