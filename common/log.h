/*
 * Logging. Each process logs to one file in its session's logs/ (log_open) and, when asked, to
 * stderr. Lines carry the time, level, process name and pid. Thread-safe: one write(2) per line.
 */
#ifndef RAYC_COMMON_LOG_H
#define RAYC_COMMON_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Sets the process name shown in every line and the minimum level. */
void log_init(const char *name, enum log_level level);

/* Opens (appends to) PATH as the log file; 0 or a negative errno. Lines also go to stderr when
 * to_stderr is set, or when stderr is the systemd journal ($JOURNAL_STREAM): under systemd every
 * daemon's lines reach journald as well as its file. */
int log_open(const char *path, int to_stderr);

/* Parses "debug", "info", "warn", "error"; returns -1 when unknown. */
int log_level_parse(const char *s);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
