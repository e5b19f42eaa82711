/*
 * rayc_lang.h: the language-binding interface of librayc. A front end for another language (the
 * Python extension module, python/rayc/_rayc.c) is written against rayc.h and this header only;
 * it never reaches into the core worker's internals.
 *
 * A worker process of another language is an interpreter that loads librayc, registers an executor
 * for its language (rayc_executor_set) and hands its main thread to rayc_worker_main(), which
 * connects to the raylet, serves the core worker's RPCs and calls the executor for every task,
 * actor creation and actor call of that language. Tasks of another language name their function
 * by a descriptor (an opaque string the binding defines, e.g. "py:<job>:<function hash>:<name>").
 */
#ifndef RAYC_LANG_H
#define RAYC_LANG_H

#include "rayc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs a worker process: argv as the raylet passes it (--session-dir, --raylet-socket, ...).
 * Returns the process's exit status once the raylet tells it to stop (SIGTERM, or its socket
 * closes). rayc-worker's main() is only this call. */
RAYC_EXTERN int rayc_worker_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif
