
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherctl and jobs: long work (codes issue, import, export, members
 * import) runs in-process as a job (worker/ops/vw_job.h), with a progress
 * bar on stderr when it is a terminal; --detach queues it for voucherd
 * instead.  voucherctl job list|get|cancel|output|wait.
 */


#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vw_bar.h"
#include "vw_ctl.h"
#include "vw_job.h"
#include "vw_util.h"


static volatile sig_atomic_t  vw_ctl_stop;


static const char  vw_job_usage[] =
    "usage: voucherctl job list [--state S] [--kind K] [--limit N]\n"
    "       voucherctl job get ID\n"
    "       voucherctl job cancel ID\n"
    "       voucherctl job output ID [--output FILE]\n"
    "       voucherctl job wait ID\n";


typedef struct {
    const char  *label;
    int64_t      start_ms;
    int64_t      last_ms;
    int          drawn;
} vw_bar_state_t;


static int64_t
vw_mono_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
vw_ctl_signal(int signo)
{
    (void) signo;

    vw_ctl_stop = 1;
}


static size_t
vw_term_width(void)
{
    struct winsize  ws;

    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) {
        return ws.ws_col - 1;
    }

    return 79;
}


static void
vw_bar_draw(vw_bar_state_t *b, int64_t done, int64_t total, int force)
{
    char     line[512];
    int64_t  now;

    now = vw_mono_ms();

    /* ten times a second at most */
    if (!force && b->drawn && now - b->last_ms < 100) {
        return;
    }

    b->last_ms = now;
    b->drawn = 1;

    vw_bar_render(line, sizeof(line), b->label, done, total,
                  now - b->start_ms, vw_term_width());
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
}


static void
vw_ctl_progress(vw_job_t *j)
{
    vw_bar_draw(j->data, j->done, j->total, 0);
}


/* the lines of the input refused, as "line N: why" */

static void
vw_ctl_job_errors(vw_job_t *j)
{
    size_t   i;
    json_t  *o, *line;

    json_array_foreach(j->errors, i, o) {
        line = json_object_get(o, "line");

        if (line) {
            vw_ctl_fail("line %lld: %s", (long long) json_integer_value(line),
                        json_string_value(json_object_get(o, "message")));

        } else {
            vw_ctl_fail("%s", json_string_value(json_object_get(o,
                                                                "message")));
        }
    }
}


static void
vw_ctl_owner(vw_ctl_t *ctl, char *buf, size_t size)
{
    vw_op_t  op;
    char     host[64];

    if (gethostname(host, sizeof(host)) != 0) {
        snprintf(host, sizeof(host), "localhost");
    }

    host[sizeof(host) - 1] = '\0';

    if (vw_ctl_op_init(ctl, &op) == 0) {
        snprintf(buf, size, "%s@%s:%d", op.who, host, (int) getpid());

    } else {
        snprintf(buf, size, "voucherctl@%s:%d", host, (int) getpid());
    }
}


int
vw_ctl_job(vw_ctl_t *ctl, vw_job_t *j, int record, const char *what)
{
    int               rc;
    vw_op_t           op;
    vw_operr_t        e;
    vw_bar_state_t    bar;
    struct sigaction  sa, old_int, old_term;

    if (vw_ctl_op_init(ctl, &op) != 0) {
        return VW_EXIT_FAIL;
    }

    j->op = &op;
    j->lease_ms = ctl->cf.lease_s * 1000;
    j->stop = &vw_ctl_stop;
    j->stop_cancels = 1;

    if (record) {
        vw_ctl_owner(ctl, j->owner, sizeof(j->owner));

        if (vw_job_create(&op, j->kind, j->params, j->total, j->phase,
                          j->keep, j->input, j->input_len, j->owner,
                          j->lease_ms, j->id, sizeof(j->id), &e)
            != 0)
        {
            vw_ctl_fail("%s: %s %s", what, e.reason, e.message);
            return VW_EXIT_FAIL;
        }
    }

    memset(&bar, 0, sizeof(bar));
    bar.start_ms = vw_mono_ms();
    bar.label = j->id[0] ? j->id : NULL;

    if (isatty(STDERR_FILENO)) {
        j->progress = vw_ctl_progress;
        j->data = &bar;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = vw_ctl_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    rc = vw_job_run(j);

    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);

    if (bar.drawn) {
        vw_bar_draw(&bar, j->done, j->total, 1);
        fputc('\n', stderr);
    }

    vw_ctl_job_errors(j);

    switch (rc) {

    case VW_JOB_DONE:
        return VW_EXIT_OK;

    case VW_JOB_CANCELLED:
        vw_ctl_fail("%s: cancelled%s%s, %lld done", what,
                    j->id[0] ? ", job " : "", j->id, (long long) j->done);
        break;

    case VW_JOB_FAILED:
        vw_ctl_fail("%s: %s", what, j->e.message);
        snprintf(ctl->reason, sizeof(ctl->reason), "%s", j->e.reason);
        break;

    default:
        vw_ctl_fail("%s: %s%s%s", what, j->e.message,
                    j->id[0] ? "; voucherd resumes job " : "", j->id);
        break;
    }

    return VW_EXIT_FAIL;
}


int
vw_ctl_job_detach(vw_ctl_t *ctl, vw_job_t *j, const char *what)
{
    json_t      *o;
    vw_op_t      op;
    vw_operr_t   e;

    if (vw_ctl_op_init(ctl, &op) != 0) {
        return VW_EXIT_FAIL;
    }

    if (vw_job_create(&op, j->kind, j->params, j->total, j->phase, j->keep,
                      j->input, j->input_len, "", 0, j->id, sizeof(j->id),
                      &e) != 0
        || (o = vw_job_read(&op, j->id, &e)) == NULL)
    {
        vw_ctl_fail("%s: %s %s", what, e.reason, e.message);
        return VW_EXIT_FAIL;
    }

    vw_ctl_print(o, 0);
    json_decref(o);

    return VW_EXIT_OK;
}


/* ------------------------------------------------------ job commands */


static int
vw_job_result(vw_ctl_t *ctl, const char *id, const char *output)
{
    int          more, rc;
    FILE        *out;
    int64_t      index;
    vw_op_t      op;
    vw_buf_t     b;
    vw_operr_t   e;

    if (vw_ctl_op_init(ctl, &op) != 0) {
        return VW_EXIT_FAIL;
    }

    out = stdout;

    if (output && strcmp(output, "-") != 0) {
        out = fopen(output, "w");

        if (out == NULL) {
            vw_ctl_fail("job output: %s: cannot write", output);
            return VW_EXIT_FAIL;
        }
    }

    memset(&b, 0, sizeof(vw_buf_t));
    index = 0;
    rc = VW_EXIT_OK;

    do {
        vw_buf_reset(&b);

        if (vw_job_output(&op, id, &index, 1 << 20, &b, &more, &e) != 0) {
            vw_ctl_fail("job output %s: %s %s", id, e.reason, e.message);
            rc = VW_EXIT_FAIL;
            break;
        }

        if (b.len && fwrite(b.data, 1, b.len, out) != b.len) {
            vw_ctl_fail("job output: write error");
            rc = VW_EXIT_FAIL;
            break;
        }

    } while (more);

    vw_buf_free(&b);

    if (out != stdout && fclose(out) != 0) {
        rc = VW_EXIT_FAIL;
    }

    return rc;
}


/* follows a job voucherd runs: the bar, then the job */

static int
vw_job_wait(vw_ctl_t *ctl, const char *id)
{
    int              rc, tty;
    json_t          *o, *v;
    vw_op_t          op;
    vw_operr_t       e;
    vw_bar_state_t   bar;
    const char      *state;
    struct timespec  ts;

    if (vw_ctl_op_init(ctl, &op) != 0) {
        return VW_EXIT_FAIL;
    }

    memset(&bar, 0, sizeof(bar));
    bar.label = id;
    bar.start_ms = vw_mono_ms();
    tty = isatty(STDERR_FILENO);

    for ( ;; ) {
        o = vw_job_read(&op, id, &e);

        if (o == NULL) {
            vw_ctl_fail("job wait %s: %s %s", id, e.reason, e.message);
            return VW_EXIT_FAIL;
        }

        state = json_string_value(json_object_get(o, "state"));
        v = json_object_get(o, "total");

        if (tty) {
            vw_bar_draw(&bar, json_integer_value(json_object_get(o, "done")),
                        json_is_integer(v) ? json_integer_value(v) : -1, 0);
        }

        if (strcmp(state, "queued") != 0 && strcmp(state, "running") != 0) {
            break;
        }

        json_decref(o);

        ts.tv_sec = 0;
        ts.tv_nsec = 200 * 1000000L;
        nanosleep(&ts, NULL);
    }

    if (bar.drawn) {
        fputc('\n', stderr);
    }

    rc = strcmp(state, "done") == 0 ? VW_EXIT_OK : VW_EXIT_FAIL;
    vw_ctl_print(o, 0);
    json_decref(o);

    return rc;
}


int
vw_cmd_job(vw_ctl_t *ctl, int argc, char **argv)
{
    int    npos, rc;
    char  *pos[2];

    vw_opt_t  opts[] = {
        { "--output", 1, NULL, 0 },
        { NULL, 0, NULL, 0 }
    };

    if (argc >= 1 && (strcmp(argv[0], "output") == 0
                      || strcmp(argv[0], "wait") == 0))
    {
        npos = vw_opts(argc - 1, argv + 1, opts, pos, 2, vw_job_usage);

        if (npos != 1 || (argv[0][0] == 'w' && vw_opt(opts, "--output"))) {
            if (npos >= 0) {
                fputs(vw_job_usage, stderr);
            }

            return VW_EXIT_USAGE;
        }

        return argv[0][0] == 'o' ? vw_job_result(ctl, pos[0],
                                                 vw_opt(opts, "--output"))
                                 : vw_job_wait(ctl, pos[0]);
    }

    rc = vw_ctl_ops_cmd(ctl, "job", argc, argv);

    if (rc >= 0) {
        return rc;
    }

    fputs(vw_job_usage, stderr);

    return VW_EXIT_USAGE;
}
