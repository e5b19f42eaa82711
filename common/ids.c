/* Identifiers: random generation, hex encoding and the ObjectID <-> TaskID relation. */
#include "common/ids.h"

#include "common/status.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static void id_getrandom(void *buf, size_t len)
{
  uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = getrandom(p, len, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      abort(); /* no entropy source: nothing sensible to do */
    }
    p += n;
    len -= (size_t)n;
  }
}

/* Each thread takes its random bytes from a block of its own, refilled from the kernel's generator
 * (getrandom) once every ID_RANDOM_BLOCK bytes: a task id costs one system call per ~12 tasks, not
 * one each. A forked child starts with an empty block (it must not repeat its parent's bytes). */
enum { ID_RANDOM_BLOCK = 256 };
static __thread uint8_t id_block[ID_RANDOM_BLOCK];
static __thread size_t id_block_left;
static pthread_once_t id_fork_once = PTHREAD_ONCE_INIT;

static void id_forked(void)
{
  explicit_bzero(id_block, sizeof(id_block));
  id_block_left = 0;
}

static void id_fork_hook(void)
{
  pthread_atfork(NULL, NULL, id_forked);
}

void id_random(void *buf, size_t len)
{
  if (len > ID_RANDOM_BLOCK / 4) {
    id_getrandom(buf, len);
    return;
  }
  pthread_once(&id_fork_once, id_fork_hook);
  if (id_block_left < len) {
    id_getrandom(id_block, sizeof(id_block));
    id_block_left = sizeof(id_block);
  }
  uint8_t *src = id_block + sizeof(id_block) - id_block_left;
  memcpy(buf, src, len);
  explicit_bzero(src, len); /* handed out once */
  id_block_left -= len;
}

char *id_hex(const void *id, size_t len, char *out)
{
  static const char digits[] = "0123456789abcdef";
  const uint8_t *b = id;
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[b[i] >> 4];
    out[2 * i + 1] = digits[b[i] & 15];
  }
  out[2 * len] = '\0';
  return out;
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int id_from_hex(const char *hex, void *id, size_t len)
{
  uint8_t *b = id;
  if (strlen(hex) != 2 * len)
    return RAYC_EINVALID_ARGUMENT;
  for (size_t i = 0; i < len; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return RAYC_EINVALID_ARGUMENT;
    b[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

char *id_short(const void *id, size_t len, char *out)
{
  char full[2 * ID_MAX_SIZE + 1];
  id_hex(id, len > ID_MAX_SIZE ? ID_MAX_SIZE : len, full);
  memcpy(out, full, 8);
  out[8] = '\0';
  return out;
}

id_job_t id_job_from_int(uint32_t n)
{
  id_job_t j;
  for (int i = 0; i < ID_JOB_SIZE; i++)
    j.b[i] = (uint8_t)(n >> (8 * (ID_JOB_SIZE - 1 - i)));
  return j;
}

id_task_t id_task_random(id_job_t job)
{
  id_task_t t;
  id_random(t.b, ID_TASK_SIZE - ID_JOB_SIZE);
  memcpy(t.b + ID_TASK_SIZE - ID_JOB_SIZE, job.b, ID_JOB_SIZE);
  return t;
}

id_object_t id_object_for_task(id_task_t task, uint32_t index)
{
  id_object_t o;
  memcpy(o.b, task.b, ID_TASK_SIZE);
  for (int i = 0; i < 4; i++)
    o.b[ID_TASK_SIZE + i] = (uint8_t)(index >> (8 * i));
  return o;
}

id_task_t id_object_task(const id_object_t *obj)
{
  id_task_t t;
  memcpy(t.b, obj->b, ID_TASK_SIZE);
  return t;
}

uint32_t id_object_index(const id_object_t *obj)
{
  uint32_t v = 0;
  for (int i = 0; i < 4; i++)
    v |= (uint32_t)obj->b[ID_TASK_SIZE + i] << (8 * i);
  return v;
}

id_node_t id_node_random(void)
{
  id_node_t n;
  id_random(n.b, sizeof(n.b));
  return n;
}

id_worker_t id_worker_random(void)
{
  id_worker_t w;
  id_random(w.b, sizeof(w.b));
  return w;
}

int id_is_nil(const void *id, size_t len)
{
  const uint8_t *b = id;
  for (size_t i = 0; i < len; i++)
    if (b[i])
      return 0;
  return 1;
}
