/* Helpers shared by the test task library's files (tests/tasks/, one libtest_tasks.so). */
#ifndef RAYC_TESTS_TASK_FILES_H
#define RAYC_TESTS_TASK_FILES_H

/* Writes this process's pid and a newline to path, atomically (a temporary file renamed over it),
 * so a test that sees the file reads a whole pid. 0, or -1 if the file cannot be written. */
int task_write_pid(const char *path);

#endif
