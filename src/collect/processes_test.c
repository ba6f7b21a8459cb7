/*
 * processes_test.c: the /proc/<pid>/stat walk: counts by state, top-N
 * selection and its bound, CPU usage between two ticks, pid reuse, vanished
 * processes, table growth, and garbled, truncated and missing input; the
 * per-process detail of the picked processes (io, fds, faults, context
 * switches) and the ranking by disk IO rate.
 *
 * Tests that change processes between ticks copy tests/fixtures/procs into a
 * temporary directory and rewrite stat files there, or build a /proc of
 * made-up processes (write_proc()).
 */
#include "testutil.h"
#include "collect/collect.h"

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

/* One cycle on `root` with only the processes source; top = top_processes. */
/* processes.c's DETAIL_EVERY_MS: ticks this far apart read fd/ and status. */
#define DETAIL_MS 5000

static struct collect *run(const char *root, int top)
{
    struct collect_opts o = {.proc_root = root, .top_processes = top};
    return tu_collect_only(&o, (const char *const[]){"processes"}, 1);
}

/* The fields of a stat file the source reports, parsed by the test itself. */
struct tstat {
    char state;
    char comm[64];
    unsigned long long minflt, majflt, utime, stime, threads, start, rss;
};

static int read_tstat(const char *dir, int pid, struct tstat *t)
{
    char path[4200], buf[1024];
    snprintf(path, sizeof(path), "%s/%d/stat", dir, pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *l = strchr(buf, '('), *r = strrchr(buf, ')');
    assert_non_null(l);
    assert_non_null(r);
    snprintf(t->comm, sizeof(t->comm), "%.*s", (int)(r - l - 1), l + 1);
    int got = sscanf(r + 2,
                     "%c %*s %*s %*s %*s %*s %*s %llu %*s %llu %*s %llu %llu %*s %*s %*s %*s %llu "
                     "%*s %llu %*s %llu",
                     &t->state, &t->minflt, &t->majflt, &t->utime, &t->stime, &t->threads,
                     &t->start, &t->rss);
    assert_int_equal(got, 8);
    return 0;
}

/* Write pid's stat in dir: the same as before but for utime, stime, starttime. */
static void set_stat(const char *dir, int pid, unsigned long long utime, unsigned long long stime,
                     unsigned long long start)
{
    char path[4200], buf[1024], out[1200];
    snprintf(path, sizeof(path), "%s/%d/stat", dir, pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *r = strrchr(buf, ')');
    assert_non_null(r);
    size_t o = (size_t)(r + 1 - buf);
    memcpy(out, buf, o);
    char *save, *tok = strtok_r(r + 1, " \n", &save);
    for (int i = 0; tok; i++, tok = strtok_r(NULL, " \n", &save)) {
        char num[32];
        if (i == 11 || i == 12 || i == 19) {
            snprintf(num, sizeof(num), "%llu", i == 11 ? utime : i == 12 ? stime : start);
            tok = num;
        }
        o += (size_t)snprintf(out + o, sizeof(out) - o, " %s", tok);
    }
    o += (size_t)snprintf(out + o, sizeof(out) - o, "\n");
    f = fopen(path, "w");
    assert_non_null(f);
    fwrite(out, 1, o, f);
    fclose(f);
}

static void copy_tree(const char *src, const char *dst)
{
    DIR *d = opendir(src);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char s[4200], t[4200];
        snprintf(s, sizeof(s), "%s/%s", src, de->d_name);
        snprintf(t, sizeof(t), "%s/%s", dst, de->d_name);
        struct stat st;
        assert_int_equal(stat(s, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            assert_int_equal(mkdir(t, 0755), 0);
            copy_tree(s, t);
            continue;
        }
        FILE *in = fopen(s, "rb"), *out = fopen(t, "wb");
        assert_non_null(in);
        assert_non_null(out);
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
            fwrite(buf, 1, n, out);
        fclose(in);
        fclose(out);
    }
    closedir(d);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh copy of the procs fixture; returns its path in buf. */
static char *fresh_copy(char *buf, size_t cap)
{
    snprintf(buf, cap, "/tmp/sitrep-procs-XXXXXX");
    assert_non_null(mkdtemp(buf));
    char src[4096];
    snprintf(src, sizeof(src), "%s", fixture("procs/proc"));
    copy_tree(src, buf);
    return buf;
}

static void labels(char *out, size_t cap, int pid, const char *comm)
{
    snprintf(out, cap, "pid=\"%d\",comm=\"%s\"", pid, comm);
}

/* Checks every sitrep_process_* value of pid against its stat file. */
static void check_series(const struct metric_buf *b, const char *dir, int pid, const char *comm)
{
    double hz = (double)sysconf(_SC_CLK_TCK), page = (double)sysconf(_SC_PAGESIZE);
    struct tstat t;
    assert_int_equal(read_tstat(dir, pid, &t), 0);
    char l[256];
    labels(l, sizeof(l), pid, comm);
    assert_float_equal(tu_value(b, "sitrep_process_cpu_seconds_total", l),
                       (double)(t.utime + t.stime) / hz, 1e-9);
    assert_float_equal(tu_value(b, "sitrep_process_resident_memory_bytes", l), (double)t.rss * page,
                       0);
    assert_float_equal(tu_value(b, "sitrep_process_threads", l), (double)t.threads, 0);
    assert_float_equal(tu_value(b, "sitrep_process_minor_faults_total", l), (double)t.minflt, 0);
    assert_float_equal(tu_value(b, "sitrep_process_major_faults_total", l), (double)t.majflt, 0);
}

static const int fixture_pids[] = {1, 42, 100, 200, 300, 400, 500, 700};

static void test_counts_and_all_series(void **state)
{
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", fixture("procs/proc"));
    struct collect *c = run(dir, 10); /* more than there are processes */
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "processes"), 1);

    unsigned threads = 0, by_state[128] = {0};
    for (size_t i = 0; i < ARRAY_SIZE(fixture_pids); i++) {
        struct tstat t;
        assert_int_equal(read_tstat(dir, fixture_pids[i], &t), 0);
        threads += (unsigned)t.threads;
        by_state[(int)t.state]++;
    }
    /* 600 has no stat (exited): skipped; loadavg is no pid. */
    assert_float_equal(tu_value(b, "node_processes_pids", ""), ARRAY_SIZE(fixture_pids), 0);
    assert_float_equal(tu_value(b, "node_processes_threads", ""), threads, 0);
    size_t nstates = 0;
    for (int s = 0; s < 128; s++)
        if (by_state[s]) {
            char l[32];
            snprintf(l, sizeof(l), "state=\"%c\"", s);
            assert_float_equal(tu_value(b, "node_processes_state", l), by_state[s], 0);
            nstates++;
        }
    assert_int_equal(tu_count(b, "node_processes_state"), nstates);
    /* No sys/kernel limits in the fixture: those gauges are simply absent. */
    assert_false(tu_find(b, "node_processes_max_processes", "", NULL));

    /* Every process is in the top 10; comm keeps spaces and ')' and gets
     * invalid UTF-8 replaced. */
    assert_int_equal(tu_count(b, "sitrep_process_cpu_seconds_total"), ARRAY_SIZE(fixture_pids));
    check_series(b, dir, 42, "my proc) (x");
    check_series(b, dir, 100, "kworker/0:1");
    check_series(b, dir, 700, "bad?name");
    check_series(b, dir, 1, "init");
    /* First tick: no previous sample, so no usage yet. */
    assert_float_equal(tu_value(b, "sitrep_process_cpu_usage_ratio", "pid=\"300\",comm=\"busy\""),
                       0, 0);
    collect_free(c);
}

static void test_top_n_usage_and_reuse(void **state)
{
    (void)state;
    double hz = (double)sysconf(_SC_CLK_TCK);
    char dir[64];
    fresh_copy(dir, sizeof(dir));
    struct collect *c = run(dir, 2);
    const struct metric_buf *b = collect_last(c);
    /* Tick 1: CPU ranks by total CPU time (all usage 0): 300 and 42; RSS
     * ranks 200 and 42. The union has 3 processes. */
    assert_int_equal(tu_count(b, "sitrep_process_cpu_seconds_total"), 3);
    assert_int_equal(tu_count(b, "sitrep_process_cpu_usage_ratio"), 3);
    assert_int_equal(tu_count(b, "sitrep_process_resident_memory_bytes"), 3);
    assert_int_equal(tu_count(b, "sitrep_process_threads"), 3);
    check_series(b, dir, 300, "busy");
    check_series(b, dir, 42, "my proc) (x");
    check_series(b, dir, 200, "big mem");

    struct tstat t1, t42, t200, t500;
    assert_int_equal(read_tstat(dir, 1, &t1), 0);
    assert_int_equal(read_tstat(dir, 42, &t42), 0);
    assert_int_equal(read_tstat(dir, 200, &t200), 0);
    assert_int_equal(read_tstat(dir, 500, &t500), 0);
    /* One second later: 1 used 150 ticks, 500 50, 42 10; pid 200 exited
     * and a new process got its pid (other starttime, fewer ticks); 400
     * exited. */
    set_stat(dir, 1, t1.utime + 150, t1.stime, t1.start);
    set_stat(dir, 500, t500.utime + 50, t500.stime, t500.start);
    set_stat(dir, 42, t42.utime + 10, t42.stime, t42.start);
    set_stat(dir, 200, 30, 0, t200.start + 4000);
    char p400[128];
    snprintf(p400, sizeof(p400), "%s/400", dir);
    rm_tree(p400);
    collect_once(c, 2000);
    b = collect_last(c);
    assert_int_equal(tu_source_success(b, "processes"), 1);
    assert_float_equal(tu_value(b, "node_processes_pids", ""), ARRAY_SIZE(fixture_pids) - 1, 0);
    /* CPU top 2: 1 (150 ticks/s) and 500 (50); RSS top 2: 200 and 42. */
    assert_int_equal(tu_count(b, "sitrep_process_cpu_usage_ratio"), 4); /* the 2N bound */
    assert_float_equal(tu_value(b, "sitrep_process_cpu_usage_ratio", "pid=\"1\",comm=\"init\""),
                       150 / hz, 1e-9);
    assert_float_equal(tu_value(b, "sitrep_process_cpu_usage_ratio", "pid=\"500\",comm=\"sleepy\""),
                       50 / hz, 1e-9);
    assert_float_equal(
        tu_value(b, "sitrep_process_cpu_usage_ratio", "pid=\"42\",comm=\"my proc) (x\""), 10 / hz,
        1e-9);
    /* Reused pid: all of the new process's 30 ticks fall in this second
     * (not 30 - 20 against the old process). */
    assert_float_equal(
        tu_value(b, "sitrep_process_cpu_usage_ratio", "pid=\"200\",comm=\"big mem\""), 30 / hz,
        1e-9);
    assert_false(tu_find(b, "sitrep_process_cpu_seconds_total", "pid=\"300\",comm=\"busy\"", NULL));
    check_series(b, dir, 1, "init");
    check_series(b, dir, 500, "sleepy");
    check_series(b, dir, 200, "big mem");

    /* Tick 3, two seconds later, nothing ran: usage drops to 0. */
    collect_once(c, 4000);
    b = collect_last(c);
    assert_float_equal(
        tu_value(b, "sitrep_process_cpu_usage_ratio", "pid=\"42\",comm=\"my proc) (x\""), 0, 0);
    assert_true(tu_count(b, "sitrep_process_cpu_usage_ratio") <= 4);
    collect_free(c);
    rm_tree(dir);
}

static void test_top_off(void **state)
{
    (void)state;
    struct collect *c = run(fixture("procs/proc"), -1); /* negative: off */
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "processes"), 1);
    assert_true(tu_find(b, "node_processes_pids", "", NULL));
    assert_int_equal(tu_count(b, "sitrep_process_cpu_seconds_total"), 0);
    assert_int_equal(tu_count(b, "sitrep_process_resident_memory_bytes"), 0);
    collect_free(c);
}

/* A made-up process: what write_proc() puts in its stat file. */
struct fake {
    int pid;
    char state;
    unsigned long long utime, rss, minflt, majflt, threads, start;
};

/* Write a minimal <pid>/stat for f (comm "p<pid>"; start 0 means pid). */
static void write_proc(const char *dir, const struct fake *f)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%d", dir, f->pid);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%d/stat", dir, f->pid);
    FILE *o = fopen(path, "w");
    assert_non_null(o);
    fprintf(o, "%d (p%d) %c 1 1 1 0 -1 0 %llu 0 %llu 0 %llu 0 0 0 20 0 %llu 0 %llu 1000 %llu 0\n",
            f->pid, f->pid, f->state ? f->state : 'S', f->minflt, f->majflt, f->utime,
            f->threads ? f->threads : 1, f->start ? f->start : (unsigned long long)f->pid, f->rss);
    fclose(o);
}

/* Write a minimal stat for pid with the given CPU ticks and rss. */
static void write_pid(const char *dir, int pid, unsigned long long utime, unsigned long long rss)
{
    write_proc(dir, &(struct fake){.pid = pid, .utime = utime, .rss = rss});
}

/* Write <pid>/<name> with the given text. */
static void write_file(const char *dir, int pid, const char *name, const char *text)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%d/%s", dir, pid, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* <pid>/io as the kernel writes it. */
static void write_io(const char *dir, int pid, unsigned long long rd, unsigned long long wr)
{
    char text[512];
    snprintf(text, sizeof(text),
             "rchar: %llu\nwchar: %llu\nsyscr: 10\nsyscw: 20\nread_bytes: %llu\n"
             "write_bytes: %llu\ncancelled_write_bytes: 4096\n",
             rd + 12345, wr + 777, rd, wr);
    write_file(dir, pid, "io", text);
}

/* <pid>/status with the context switch lines last, as the kernel has them. */
static void write_status(const char *dir, int pid, unsigned long long vol,
                         unsigned long long nonvol)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "Name:\tp%d\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t%d\nPid:\t%d\n"
             "VmRSS:\t    1000 kB\nThreads:\t1\nCpus_allowed:\tff\nCpus_allowed_list:\t0-7\n"
             "voluntary_ctxt_switches:\t%llu\nnonvoluntary_ctxt_switches:\t%llu\n",
             pid, pid, pid, vol, nonvol);
    write_file(dir, pid, "status", text);
}

/* <pid>/fd with n entries (files here; symlinks in /proc). */
static void write_fds(const char *dir, int pid, int n)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%d/fd", dir, pid);
    mkdir(path, 0755);
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof(name), "fd/%d", i);
        write_file(dir, pid, name, "");
    }
}

static char *tmp_root(char *buf, size_t cap)
{
    snprintf(buf, cap, "/tmp/sitrep-procs-XXXXXX");
    assert_non_null(mkdtemp(buf));
    return buf;
}

static void test_many_processes(void **state)
{
    (void)state;
    double hz = (double)sysconf(_SC_CLK_TCK);
    char dir[64];
    tmp_root(dir, sizeof(dir));
    for (int p = 1; p <= 600; p++)
        write_pid(dir, p, (unsigned long long)p, (unsigned long long)p);
    struct collect *c = run(dir, 3);
    const struct metric_buf *b = collect_last(c);
    assert_float_equal(tu_value(b, "node_processes_pids", ""), 600, 0);
    /* Old processes ran p % 7 ticks more; 900 new ones (which grows the
     * tables while the previous tick's entries are still needed) ran none. */
    for (int p = 1; p <= 1500; p++)
        write_pid(dir, p, p <= 600 ? (unsigned long long)(p + p % 7) : 0, (unsigned long long)p);
    collect_once(c, 2000);
    b = collect_last(c);
    assert_float_equal(tu_value(b, "node_processes_pids", ""), 1500, 0);
    /* Top 3 by CPU: usage 6 ticks/s, ties broken by total CPU: 594, 587, 580.
     * Top 3 by RSS: 1500, 1499, 1498. */
    assert_int_equal(tu_count(b, "sitrep_process_cpu_usage_ratio"), 6);
    static const int cpu_top[] = {594, 587, 580};
    for (size_t i = 0; i < 3; i++) {
        char l[64];
        snprintf(l, sizeof(l), "pid=\"%d\",comm=\"p%d\"", cpu_top[i], cpu_top[i]);
        assert_float_equal(tu_value(b, "sitrep_process_cpu_usage_ratio", l), 6 / hz, 1e-9);
    }
    for (int p = 1498; p <= 1500; p++) {
        char l[64];
        snprintf(l, sizeof(l), "pid=\"%d\",comm=\"p%d\"", p, p);
        assert_float_equal(tu_value(b, "sitrep_process_resident_memory_bytes", l),
                           (double)p * (double)sysconf(_SC_PAGESIZE), 0);
        assert_float_equal(tu_value(b, "sitrep_process_cpu_usage_ratio", l), 0, 0);
    }
    collect_free(c);
    rm_tree(dir);
}

/* pid's value of a sitrep_process_* family (comm "p<pid>"); asserts it exists. */
static double pval(const struct metric_buf *b, const char *name, int pid)
{
    char l[64];
    snprintf(l, sizeof(l), "pid=\"%d\",comm=\"p%d\"", pid, pid);
    return tu_value(b, name, l);
}

/* Whether pid has a series in family name. */
static int phas(const struct metric_buf *b, const char *name, int pid)
{
    char l[64];
    snprintf(l, sizeof(l), "pid=\"%d\",comm=\"p%d\"", pid, pid);
    return tu_find(b, name, l, NULL);
}

static double ctxsw(const struct metric_buf *b, int pid, const char *kind)
{
    char l[96];
    snprintf(l, sizeof(l), "pid=\"%d\",comm=\"p%d\",kind=\"%s\"", pid, pid, kind);
    return tu_value(b, "sitrep_process_context_switches_total", l);
}

/* The detail series of the picked processes, and only of them. */
static void test_detail_series(void **state)
{
    (void)state;
    char dir[64];
    tmp_root(dir, sizeof(dir));
    /* 10 leads CPU, 20 leads RSS, 30 is neither and not picked with N = 1. */
    write_proc(dir,
               &(struct fake){
                   .pid = 10, .utime = 500, .rss = 10, .minflt = 1234, .majflt = 56, .threads = 3});
    write_proc(dir, &(struct fake){.pid = 20, .utime = 5, .rss = 9000, .minflt = 7, .majflt = 8});
    write_proc(dir, &(struct fake){.pid = 30, .utime = 1, .rss = 1});
    for (int p = 10; p <= 30; p += 10) {
        write_io(dir, p, 4096ull * (unsigned)p, 8192ull * (unsigned)p);
        write_status(dir, p, 100ull + (unsigned)p, 3ull + (unsigned)p);
        write_fds(dir, p, p / 10 + 2);
    }
    struct collect *c = run(dir, 1);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "processes"), 1);
    static const char *const fams[] = {
        "sitrep_process_io_read_bytes_total",
        "sitrep_process_io_write_bytes_total",
        "sitrep_process_io_bytes_per_second",
        "sitrep_process_open_fds",
        "sitrep_process_minor_faults_total",
        "sitrep_process_major_faults_total",
        "sitrep_process_threads",
    };
    for (size_t i = 0; i < ARRAY_SIZE(fams); i++) {
        assert_int_equal(tu_count(b, fams[i]), 2);
        assert_false(phas(b, fams[i], 30));
    }
    assert_int_equal(tu_count(b, "sitrep_process_context_switches_total"), 4);
    assert_float_equal(pval(b, "sitrep_process_io_read_bytes_total", 10), 40960, 0);
    assert_float_equal(pval(b, "sitrep_process_io_write_bytes_total", 20), 163840, 0);
    assert_float_equal(pval(b, "sitrep_process_open_fds", 10), 3, 0);
    assert_float_equal(pval(b, "sitrep_process_open_fds", 20), 4, 0);
    assert_float_equal(pval(b, "sitrep_process_minor_faults_total", 10), 1234, 0);
    assert_float_equal(pval(b, "sitrep_process_major_faults_total", 10), 56, 0);
    assert_float_equal(pval(b, "sitrep_process_major_faults_total", 20), 8, 0);
    assert_float_equal(pval(b, "sitrep_process_threads", 10), 3, 0);
    assert_float_equal(ctxsw(b, 10, "voluntary"), 110, 0);
    assert_float_equal(ctxsw(b, 10, "nonvoluntary"), 13, 0);
    assert_float_equal(ctxsw(b, 20, "nonvoluntary"), 23, 0);
    /* First tick: no earlier reading, so no rate yet. */
    assert_float_equal(pval(b, "sitrep_process_io_bytes_per_second", 10), 0, 0);

    /* One second later both are picked still: their fd and status files are
     * not due (DETAIL_EVERY_MS), so only those series skip the tick. */
    collect_once(c, 2000);
    b = collect_last(c);
    assert_int_equal(tu_count(b, "sitrep_process_open_fds"), 0);
    assert_int_equal(tu_count(b, "sitrep_process_context_switches_total"), 0);
    assert_int_equal(tu_count(b, "sitrep_process_minor_faults_total"), 2);
    assert_int_equal(tu_count(b, "sitrep_process_io_read_bytes_total"), 2);

    /* Five seconds after the first tick 10 has read 1 MiB more, and the
     * files it lacks now (status, fd: gone or unreadable) only drop those
     * series. */
    write_proc(dir,
               &(struct fake){
                   .pid = 10, .utime = 600, .rss = 10, .minflt = 1300, .majflt = 60, .threads = 3});
    write_io(dir, 10, 40960 + (1 << 20), 81920);
    char path[4200];
    snprintf(path, sizeof(path), "%s/10/status", dir);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof(path), "%s/10/fd", dir);
    rm_tree(path);
    collect_once(c, 6000);
    b = collect_last(c);
    assert_int_equal(tu_source_success(b, "processes"), 1);
    assert_float_equal(pval(b, "sitrep_process_io_bytes_per_second", 10), (1 << 20) / 4.0, 1e-9);
    assert_float_equal(pval(b, "sitrep_process_minor_faults_total", 10), 1300, 0);
    assert_false(phas(b, "sitrep_process_open_fds", 10));
    assert_int_equal(tu_count(b, "sitrep_process_context_switches_total"), 2);
    assert_float_equal(tu_source_errors(b, "processes"), 0, 0);
    collect_free(c);
    rm_tree(dir);
}

/*
 * The IO ranking picks a process that is neither top by CPU nor by RSS, with
 * its rate, and gives it every detail series; at most 3N processes.
 */
static void test_io_ranking(void **state)
{
    (void)state;
    char dir[64];
    tmp_root(dir, sizeof(dir));
    /* 1, 2: top CPU; 3, 4: top RSS; 5: the migration job (little CPU, little
     * memory, state D); 6: did more IO in total but is idle now. */
    static const struct fake procs[] = {
        {.pid = 1, .utime = 9000, .rss = 10}, {.pid = 2, .utime = 8000, .rss = 10},
        {.pid = 3, .utime = 1, .rss = 90000}, {.pid = 4, .utime = 1, .rss = 80000},
        {.pid = 5, .utime = 2, .rss = 20},    {.pid = 6, .utime = 3, .rss = 30},
    };
    for (size_t i = 0; i < ARRAY_SIZE(procs); i++) {
        write_proc(dir, &procs[i]);
        write_io(dir, procs[i].pid, 1000, 1000);
    }
    write_io(dir, 6, 1ull << 40, 1ull << 40);
    struct collect *c = run(dir, 2);
    const struct metric_buf *b = collect_last(c);
    /* No rate anywhere yet: the IO list is empty, only CPU and RSS picks. */
    assert_int_equal(tu_count(b, "sitrep_process_io_bytes_per_second"), 4);
    assert_false(phas(b, "sitrep_process_io_read_bytes_total", 5));

    /* 1 s later: 1 and 2 ran (CPU top), 5 did not run a full clock tick but
     * is in D and read 50 MB and wrote 10 MB; 3 wrote a little. */
    struct fake f = procs[0];
    f.utime += 100;
    write_proc(dir, &f);
    f = procs[1];
    f.utime += 90;
    write_proc(dir, &f);
    f = procs[4];
    f.state = 'D';
    write_proc(dir, &f);
    write_io(dir, 5, 1000 + 50000000, 1000 + 10000000);
    write_io(dir, 3, 1000, 1000 + 4096);
    collect_once(c, 2000);
    b = collect_last(c);
    assert_int_equal(tu_count(b, "sitrep_process_io_bytes_per_second"), 5); /* <= 3N */
    assert_float_equal(pval(b, "sitrep_process_io_bytes_per_second", 5), 60000000, 1e-6);
    assert_float_equal(pval(b, "sitrep_process_io_read_bytes_total", 5), 50001000, 0);
    assert_float_equal(pval(b, "sitrep_process_io_write_bytes_total", 5), 10001000, 0);
    assert_true(phas(b, "sitrep_process_cpu_usage_ratio", 5));
    assert_true(phas(b, "sitrep_process_major_faults_total", 5));
    assert_false(phas(b, "sitrep_process_cpu_seconds_total", 6));
    /* 3 did not run, but was picked last tick, so it is read every tick. */
    assert_float_equal(pval(b, "sitrep_process_io_bytes_per_second", 3), 4096, 1e-9);

    /* Tick 3: 5 stopped (not D, no CPU) but was picked, so it is read and
     * drops to 0, and leaves the list; 3 and 4 are the RSS top still. */
    write_proc(dir, &procs[4]);
    collect_once(c, 3000);
    b = collect_last(c);
    assert_false(phas(b, "sitrep_process_io_bytes_per_second", 5));
    assert_int_equal(tu_count(b, "sitrep_process_io_bytes_per_second"), 4);
    assert_float_equal(pval(b, "sitrep_process_io_bytes_per_second", 3), 0, 0);

    /* 6 neither runs nor sleeps in D, yet writes: the periodic re-read
     * finds it within IO_REFRESH (10) ticks, its rate averaged since its
     * last reading. */
    write_io(dir, 6, 1ull << 40, (1ull << 40) + 5000000);
    int found = 0;
    for (int t = 4; t <= 14 && !found; t++) {
        collect_once(c, 1000 * t);
        b = collect_last(c);
        if (phas(b, "sitrep_process_io_bytes_per_second", 6)) {
            /* Last read at tick 1 (new) or by a refresh before the write. */
            double rate = pval(b, "sitrep_process_io_bytes_per_second", 6);
            assert_true(rate > 0 && rate <= 5000000 / 3.0 + 1e-6);
            found = t;
        }
    }
    assert_true(found);
    collect_free(c);
    rm_tree(dir);
}

/* An io file that cannot be read drops only that process's io series, and
 * counts no error; pid reuse starts the io reading afresh; a picked process
 * that exits leaves nothing behind. */
static void test_io_unreadable_reuse_exit(void **state)
{
    (void)state;
    char dir[64], path[4200];
    tmp_root(dir, sizeof(dir));
    write_proc(dir, &(struct fake){.pid = 7, .utime = 100, .rss = 100});
    write_proc(dir, &(struct fake){.pid = 8, .utime = 50, .rss = 50, .start = 500});
    write_proc(dir, &(struct fake){.pid = 9, .utime = 10, .rss = 10});
    /* As root every file reads; a directory where io should be fails the
     * read the way another user's io file does (EACCES) for non-root. */
    snprintf(path, sizeof(path), "%s/7/io", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    write_io(dir, 8, 1000000, 0);
    write_io(dir, 9, 0, 0);
    struct collect *c = run(dir, 5);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "processes"), 1);
    assert_true(phas(b, "sitrep_process_cpu_seconds_total", 7));
    assert_false(phas(b, "sitrep_process_io_read_bytes_total", 7));
    assert_false(phas(b, "sitrep_process_io_bytes_per_second", 7));
    assert_true(phas(b, "sitrep_process_io_read_bytes_total", 8));

    /* Tick 2: pid 8 was reused by a process that has read 300000 bytes in
     * the 2 s since the previous walk (not 300000 - 1000000 against the old
     * one); 9 exited; 7 ran and is still unreadable. */
    write_proc(dir, &(struct fake){.pid = 8, .utime = 4, .rss = 50, .start = 900});
    write_io(dir, 8, 300000, 0);
    snprintf(path, sizeof(path), "%s/9", dir);
    rm_tree(path);
    write_proc(dir, &(struct fake){.pid = 7, .utime = 200, .rss = 100});
    collect_once(c, 3000);
    b = collect_last(c);
    assert_int_equal(tu_source_success(b, "processes"), 1);
    assert_float_equal(pval(b, "sitrep_process_io_bytes_per_second", 8), 150000, 1e-9);
    assert_float_equal(pval(b, "sitrep_process_io_read_bytes_total", 8), 300000, 0);
    assert_false(phas(b, "sitrep_process_io_read_bytes_total", 7));
    for (const char *const *f = (const char *const[]){"sitrep_process_cpu_seconds_total",
                                                      "sitrep_process_io_read_bytes_total",
                                                      "sitrep_process_open_fds", NULL};
         *f; f++)
        assert_false(phas(b, *f, 9));
    assert_float_equal(tu_source_errors(b, "processes"), 0, 0);
    collect_free(c);
    rm_tree(dir);
}

/* On the real /proc, this process's open_fds is what its fd directory lists
 * (the fast path on Linux 6.2+: the directory's size). */
static void test_live_fds(void **state)
{
    (void)state;
    struct collect *c = run("/proc", 100000); /* everyone is picked */
    /* A second tick, so the files the first one kept open (sys/kernel/...,
     * read after the walk) were open while this one counted. */
    collect_once(c, 1000 + DETAIL_MS);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "processes"), 1);
    char l[128], comm[64] = "";
    FILE *f = fopen("/proc/self/comm", "r");
    assert_non_null(f);
    assert_non_null(fgets(comm, sizeof(comm), f));
    fclose(f);
    comm[strcspn(comm, "\n")] = '\0';
    snprintf(l, sizeof(l), "pid=\"%d\",comm=\"%s\"", (int)getpid(), comm);
    double fds = tu_value(b, "sitrep_process_open_fds", l);
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    for (struct dirent *de; (de = readdir(d));)
        n += de->d_name[0] != '.';
    closedir(d);
    /* While counting, the walk's directory was open and opendir's is now. */
    assert_true(fds >= n - 2 && fds <= n + 2);

    /* Picked since the first tick, this process's status file is read
     * through a kept descriptor: the counts still move. */
    snprintf(l, sizeof(l), "pid=\"%d\",comm=\"%s\",kind=\"voluntary\"", (int)getpid(), comm);
    double before = tu_value(b, "sitrep_process_context_switches_total", l);
    for (int i = 0; i < 20; i++)
        usleep(1000); /* each sleep is a voluntary switch */
    collect_once(c, 1000 + 2 * DETAIL_MS);
    b = collect_last(c);
    double after = tu_value(b, "sitrep_process_context_switches_total", l);
    if (!(after >= before + 20))
        fail_msg("voluntary switches %g then %g", before, after);
    collect_free(c);
}

static void test_host1(void **state)
{
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", fixture("host1/proc"));
    struct collect *c = run(dir, 0); /* 0: the default, 10 */
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "processes"), 1);
    struct tstat a, z;
    assert_int_equal(read_tstat(dir, 1, &a), 0);
    assert_int_equal(read_tstat(dir, 2932, &z), 0);
    assert_float_equal(tu_value(b, "node_processes_pids", ""), 2, 0);
    assert_float_equal(tu_value(b, "node_processes_threads", ""), (double)(a.threads + z.threads),
                       0);
    check_series(b, dir, 1, a.comm);
    check_series(b, dir, 2932, z.comm);
    /* The recorded host has no io, fd or status files: those series are
     * absent, and that is no error. */
    assert_int_equal(tu_count(b, "sitrep_process_io_read_bytes_total"), 0);
    assert_int_equal(tu_count(b, "sitrep_process_open_fds"), 0);
    assert_int_equal(tu_count(b, "sitrep_process_context_switches_total"), 0);
    char path[4200];
    snprintf(path, sizeof(path), "%s/sys/kernel/pid_max", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    double pid_max = 0, threads_max = 0;
    assert_int_equal(fscanf(f, "%lf", &pid_max), 1);
    fclose(f);
    snprintf(path, sizeof(path), "%s/sys/kernel/threads-max", dir);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%lf", &threads_max), 1);
    fclose(f);
    assert_float_equal(tu_value(b, "node_processes_max_processes", ""), pid_max, 0);
    assert_float_equal(tu_value(b, "node_processes_max_threads", ""), threads_max, 0);
    collect_free(c);
}

static void check_fails(const char *root)
{
    struct collect *c = run(fixture(root), 0);
    tu_assert_source_failed(collect_last(c), "processes", 1, NULL);
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    check_fails("garbled-processes/proc");       /* "(foo" never closed */
    check_fails("garbled-processes-limit/proc"); /* pid_max "lots" */
}

static void test_truncated(void **state)
{
    (void)state;
    check_fails("truncated-processes/proc"); /* stat cut after stime */
}

static void test_missing(void **state)
{
    (void)state;
    struct collect *c = run(fixture("does-not-exist"), 0);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "processes"), 0);
    assert_int_equal(tu_count(b, "node_processes_pids"), 0);
    collect_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_and_all_series),
        cmocka_unit_test(test_top_n_usage_and_reuse),
        cmocka_unit_test(test_top_off),
        cmocka_unit_test(test_many_processes),
        cmocka_unit_test(test_detail_series),
        cmocka_unit_test(test_io_ranking),
        cmocka_unit_test(test_io_unreadable_reuse_exit),
        cmocka_unit_test(test_live_fds),
        cmocka_unit_test(test_host1),
        cmocka_unit_test(test_garbled),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
