/* Logging: one formatted line, one write(2), to the log file and optionally stderr. */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Process-wide logging configuration: set once at start-up, before threads exist. */
static struct {
  char name[32];
  enum log_level level;
  int fd;
  int to_stderr;
} log_cfg = {"rayc", LOG_INFO, -1, 1};

void log_init(const char *name, enum log_level level)
{
  snprintf(log_cfg.name, sizeof(log_cfg.name), "%s", name);
  log_cfg.level = level;
}

/* True when stderr is systemd's journal stream ($JOURNAL_STREAM names its device and inode), i.e.
 * the daemon runs as a systemd unit: its lines then go to journald too. A child that inherited the
 * variable but writes stderr elsewhere (a log file) does not match. */
static int log_stderr_is_journal(void)
{
  const char *js = getenv("JOURNAL_STREAM");
  unsigned long long dev, ino;
  struct stat st;
  if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
    return 0;
  return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int log_open(const char *path, int to_stderr)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0)
    return -errno;
  if (log_cfg.fd >= 0)
    close(log_cfg.fd);
  log_cfg.fd = fd;
  log_cfg.to_stderr = to_stderr || log_stderr_is_journal();
  return 0;
}

int log_level_parse(const char *s)
{
  static const char *const names[] = {"debug", "info", "warn", "error"};
  for (int i = 0; i < 4; i++)
    if (strcmp(s, names[i]) == 0)
      return i;
  return -1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
  static const char tags[] = "DIWE";
  if (level < log_cfg.level)
    return;
  char line[2048];
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  localtime_r(&tv.tv_sec, &tm);
  int n = snprintf(line, sizeof(line), "%04d-%02d-%02d %02d:%02d:%02d.%03ld %c %s[%d] ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000), tags[level],
                   log_cfg.name, (int)getpid());
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
  if (len > sizeof(line) - 2)
    len = sizeof(line) - 2;
  line[len++] = '\n';
  if (log_cfg.fd >= 0 && write(log_cfg.fd, line, len) < 0)
    (void)errno;
  if (log_cfg.to_stderr || log_cfg.fd < 0) {
    if (write(STDERR_FILENO, line, len) < 0)
      (void)errno;
  }
}
