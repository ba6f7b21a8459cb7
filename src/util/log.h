/*
 * log.h: leveled logging to stderr, one line per message with a UTC
 * timestamp, safe to call from any thread. log_error() returns -1 so that
 * code can `return log_error(...)` and report an error exactly once.
 */
#ifndef SITREP_LOG_H
#define SITREP_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
/* Parse "debug", "info", "warn" or "error"; -1 if unknown. */
int log_level_parse(const char *s);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
