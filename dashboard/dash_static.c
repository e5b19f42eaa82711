/*
 * The dashboard's pages, compiled into rayc-dashboard with the assembler's .incbin, so the binary
 * serves them with nothing to install and no build step (the files are edited as plain HTML, CSS
 * and JavaScript in dashboard/static/; the Makefile rebuilds this object when they change).
 */
#include "dashboard/dash.h"

#include <string.h>

#define DASH_EMBED(sym, file)                                                                                   \
  __asm__(".section .rodata\n.global " #sym "\n.type " #sym ", @object\n.balign 16\n" #sym ":\n.incbin \"" file \
          "\"\n.global " #sym "_end\n" #sym "_end:\n.byte 0\n.previous\n");                                     \
  extern const unsigned char sym[], sym##_end[]

DASH_EMBED(dash_index_html, "dashboard/static/index.html");
DASH_EMBED(dash_login_html, "dashboard/static/login.html");
DASH_EMBED(dash_app_js, "dashboard/static/app.js");
DASH_EMBED(dash_style_css, "dashboard/static/style.css");

typedef struct dash_file {
  const char *path, *type;
  const unsigned char *start, *end;
} dash_file_t;

int dash_static_find(const char *path, const char **type, const unsigned char **data, size_t *len)
{
  const dash_file_t files[] = {
      {"/", "text/html; charset=utf-8", dash_index_html, dash_index_html_end},
      {"/index.html", "text/html; charset=utf-8", dash_index_html, dash_index_html_end},
      {"/login.html", "text/html; charset=utf-8", dash_login_html, dash_login_html_end},
      {"/static/app.js", "text/javascript; charset=utf-8", dash_app_js, dash_app_js_end},
      {"/static/style.css", "text/css; charset=utf-8", dash_style_css, dash_style_css_end},
  };
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    if (strcmp(files[i].path, path) == 0) {
      *type = files[i].type;
      *data = files[i].start;
      *len = (size_t)(files[i].end - files[i].start);
      return 1;
    }
  }
  return 0;
}
