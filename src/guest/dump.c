/* DumpStacks: the GCS returns its goroutine stacks; the emulator has no
 * goroutines, so it describes what it is doing instead: the session, each
 * process with its waits, each container and the recorded resources, and
 * the span context it would have parented this request's span on.
 * Environment values never appear (they may hold secrets). */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest/guest.h"

static const char *state_name(int s) {
  return s == HCSB__GCTR_CREATED   ? "created"
         : s == HCSB__GCTR_RUNNING ? "running"
                                   : "stopped";
}

static void dump_proc(FILE *f, const hcsb__gproc_t *p) {
  const hcsb__gwait_t *w;
  unsigned nwaits = 0;

  TAILQ_FOREACH(w, &p->waits, link) nwaits++;
  fprintf(f, "  process %d [%s]%s%s argv0=%s waits=%u", (int)p->pid,
          p->finished ? "exited"
          : p->reaped ? "exited, draining stdio"
                      : "running",
          p->is_init ? " init" : "", p->tty ? " tty" : "",
          p->argv0 != NULL ? p->argv0 : "?", nwaits);
  if (p->finished) fprintf(f, " exit_code=%" PRIu32, p->exit_code);
  fputc('\n', f);
}

char *hcsb__gdump(hcsb__guest_t *g, const char *span_parent, size_t *len) {
  const hcsb__gproc_t *p;
  const hcsb__gctr_t *c;
  const hcsb__gres_t *x;
  unsigned ndialing = hcsb__gexec_count(g);
  char *buf = NULL;
  FILE *f;

  f = open_memstream(&buf, len);
  if (f == NULL) return NULL;

  fprintf(f,
          "hcsb-guest %s (pid %d): %s Linux GCS bridge "
          "(hcsshim v0.11.8 behaviour)\n",
          HCSB_VERSION_STRING, (int)getpid(),
          g->act != NULL ? "acting (mounts, runc)" : "emulated");
  fprintf(f,
          "uptime %" PRIu64 " ms, requests %" PRIu64
          ", protocol %s, stdio dir %s\n",
          uv_now(g->loop) - g->start_ms, g->nrequests,
          g->negotiated ? "4" : "not negotiated", g->stdio_dir);
  fprintf(f,
          "outstanding: %u waits/execs (%u execs dialing stdio), "
          "%zu response bytes queued\n",
          g->npending, ndialing, g->wq_bytes);
  fprintf(f, "this request's span parent: %s\n", span_parent);

  fprintf(f, "\nUVM processes:\n");
  TAILQ_FOREACH(p, &g->procs, link)
  if (p->ctr == NULL) dump_proc(f, p);

  TAILQ_FOREACH(c, &g->ctrs, link) {
    fprintf(f, "\ncontainer %s [%s]%s\n", c->id, state_name(c->state),
            c->notified ? " exit notified" : "");
    TAILQ_FOREACH(p, &c->procs, clink) dump_proc(f, p);
  }

  /* The count first: a host test checks what is left mounted from it. */
  fprintf(f, "\nresources: %u\n", g->nresources);
  TAILQ_FOREACH(x, &g->resources, link)
  fprintf(f, "  %s %s%s%s%s%s\n", x->type, x->key,
          x->cid != NULL ? " container=" : "", x->cid != NULL ? x->cid : "",
          x->detail != NULL ? " " : "", x->detail != NULL ? x->detail : "");

  if (fclose(f) != 0) {
    free(buf);
    return NULL;
  }
  return buf;
}
