/*
 * The Jobs REST API (Ray's paths and JSON shapes) over the job supervisor: not served until the
 * supervisor lands; the routes answer 501 so clients learn why.
 */
#include "dashboard/dash.h"

enum MHD_Result dash_jobs(dash_req_t *r, int *matched)
{
  *matched = 1;
  return dash_reply_error(r, MHD_HTTP_NOT_IMPLEMENTED, "the Jobs REST API needs the job supervisor, which this "
                          "build does not have yet");
}
