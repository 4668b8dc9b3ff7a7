/* tests/crash_ckpt.c - a checkpoint survives a killed save, and concurrent saves to one path
 * never publish a broken file. POSIX only (fork, kill, setrlimit).
 *   build/crash_ckpt DIR [--kills N] [--seconds S]     (defaults 200 and 3: ~8 s in all)
 * Three parts, each on its own folder under DIR:
 *  kills    A child saves version v+1 over version v and is sent SIGKILL a random time
 *           after it starts, up to 1.1 times what a save takes, so the kills fall before,
 *           during and after the write of the temporary and around the rename. After each
 *           kill the path must load and be bit-identical to version v or v+1; what the kill
 *           left behind (no temporary, a partial or a complete one) is counted, then removed.
 *  bytes    The same at every byte: a child whose file-size limit (RLIMIT_FSIZE) is L is
 *           killed by SIGXFSZ when its save has written exactly L bytes, for every L up to
 *           the checkpoint's size; then again with SIGXFSZ ignored, where the write fails
 *           instead and the save must return 0 and remove its temporary.
 *  savers   Three processes save their own values (same shapes) to one path in a loop while
 *           this one loads it, for S seconds: every load must succeed and be bit-identical
 *           to one of the three versions, and no save may fail.
 * Prints what it did and "crash_ckpt: ok" or "crash_ckpt: N failures" (exit 1). */
#define _POSIX_C_SOURCE 200809L
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;
static void problem(const char *what, const char *detail)
{
    if (++failures <= 10) printf("FAIL %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
}

/* A model of two tensors, w (rows, cols) and b (cols); version v fills them with values of
 * its own. */
static void model(gm_params *P, int rows, int cols)
{
    memset(P, 0, sizeof *P);
    gm_param_new(P, "w", gm_shape2(rows, cols));
    gm_param_new(P, "b", gm_shape1(cols));
}

static void fill(gm_params *P, unsigned v)
{
    int i, k;
    for (i = 0; i < P->n; i++)
        for (k = 0; k < P->t[i]->size; k++)
            P->t[i]->val[k] = (float)(((unsigned)k * 2654435761u + v * 40503u + (unsigned)i) % 100003u) / 100003.0f;
}

typedef struct bytes { unsigned char *b; long n; } bytes;   /* a whole file; n = -1: none */

static bytes read_all(const char *path)
{
    bytes r = {NULL, -1};
    FILE *f = fopen(path, "rb");
    if (!f) return r;
    fseek(f, 0, SEEK_END);
    r.n = ftell(f);
    fseek(f, 0, SEEK_SET);
    r.b = (unsigned char *)malloc((size_t)r.n + 1);
    if (fread(r.b, 1, (size_t)r.n, f) != (size_t)r.n) r.n = -2;   /* changed under us */
    fclose(f);
    return r;
}

static int same(bytes a, bytes b) { return a.n >= 0 && a.n == b.n && memcmp(a.b, b.b, (size_t)a.n) == 0; }

/* The bytes gm_save_params writes for P (through a scratch file). */
static bytes saved(const gm_params *P, const char *scratch)
{
    bytes r = {NULL, -1};
    if (!gm_save_params(P, scratch)) problem("reference save", gm_last_error());
    else r = read_all(scratch);
    remove(scratch);
    return r;
}

/* Remove every file in dir but `keep`; returns how many; *size gets the last one's size. */
static int sweep(const char *dir, const char *keep, long *size)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1024];
    int n = 0;
    struct stat st;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
        if (strcmp(e->d_name, keep) == 0) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (size && stat(p, &st) == 0) *size = (long)st.st_size;
        remove(p);
        n++;
    }
    if (d) closedir(d);
    return n;
}

/* An empty folder top/name for one part, the checkpoint path in it, a scratch path beside. */
static void place(const char *top, const char *name, char *dir, char *path, char *scratch)
{
    snprintf(dir, 512, "%s/%s", top, name);
    sweep(dir, "", NULL);
    mkdir(dir, 0777);
    snprintf(path, 600, "%s/model.ckpt", dir);
    snprintf(scratch, 600, "%s/ref.ckpt", top);
}

/* After a killed save of `next` over `prev`: the path must be one of the two and load.
 * Returns 1 if it is `next`. */
static int check_after(const char *path, bytes prev, bytes next, gm_params *scratch, const char *what)
{
    bytes now = read_all(path);
    int is_next = same(now, next);
    if (!is_next && !same(now, prev)) problem(what, "the checkpoint is neither the old nor the new version");
    if (!gm_load_params(scratch, path)) problem(what, gm_last_error());
    free(now.b);
    return is_next;
}

/* Fork a child that saves P to path; returns once it is about to call gm_save_params. */
static pid_t start_save(const gm_params *P, const char *path)
{
    int go[2];
    char c = 0;
    pid_t pid;
    fflush(stdout);
    if (pipe(go) != 0) { problem("kills", "pipe"); return -1; }
    if ((pid = fork()) == 0) _exit(write(go[1], &c, 1) == 1 && gm_save_params(P, path) ? 0 : 1);
    if (read(go[0], &c, 1) != 1) problem("kills", "the child did not start");
    close(go[0]);
    close(go[1]);
    return pid;
}

static void kills(const char *top, int count)
{
    char dir[512], path[600], scratch[600];
    gm_params P, Q;
    gm_rng rng = gm_rng_new(1);
    bytes prev, next;
    double t0, whole = 0, most = 0;
    long size;
    int i, tmp[3] = {0, 0, 0}, published = 0, finished = 0;
    place(top, "kills", dir, path, scratch);
    model(&P, 4096, 64);
    model(&Q, 4096, 64);
    fill(&P, 0);
    prev = saved(&P, scratch);
    gm_save_params(&P, path);
    for (i = 0; i < 3; i++) {   /* how long a save takes in a child */
        pid_t pid = start_save(&P, path);
        t0 = gm_seconds();
        waitpid(pid, NULL, 0);
        whole += (gm_seconds() - t0) / 3;
    }
    for (i = 1; i <= count; i++) {
        double delay = 1.1 * whole * gm_rng_uniform(&rng);
        struct timespec ts;
        pid_t pid;
        int status, left;
        fill(&P, (unsigned)i);
        next = saved(&P, scratch);
        if ((pid = start_save(&P, path)) < 0) break;
        ts.tv_sec = (time_t)delay;
        ts.tv_nsec = (long)((delay - (double)ts.tv_sec) * 1e9);
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        if (WIFEXITED(status)) {
            finished++;
            if (WEXITSTATUS(status)) problem("kills", "a save that was not killed failed");
        }
        if (check_after(path, prev, next, &Q, "kills")) {
            published++;
            free(prev.b);
            prev = next;
        } else free(next.b);
        size = -1;
        left = sweep(dir, "model.ckpt", &size);
        if (left > 1) problem("kills", "more than one temporary left behind");
        if (left == 1) tmp[size == 0 ? 0 : size < prev.n ? 1 : 2]++;
        if (delay > most) most = delay;
    }
    printf("kills: %d saves of %ld bytes (a save takes %.1f ms) sent SIGKILL 0 to %.1f ms after starting:\n"
           "       %d published the new version (%d of them finished before the kill), %d kept the old one,\n"
           "       leaving a temporary that was empty %d, partial %d, complete %d times (removed by this test)\n",
           count, prev.n, 1e3 * whole, 1e3 * most, published, finished, count - published, tmp[0], tmp[1], tmp[2]);
    free(prev.b);
    gm_params_free(&P);
    gm_params_free(&Q);
}

static void bytes_crash(const char *top)
{
    char dir[512], path[600], scratch[600];
    gm_params P, Q;
    bytes prev, next;
    long L, size;
    int ignore, ends[2] = {0, 0};
    place(top, "bytes", dir, path, scratch);
    model(&P, 1, 8);
    model(&Q, 1, 8);
    fill(&Q, 1);
    fill(&P, 1);
    prev = saved(&P, scratch);
    fill(&P, 2);
    next = saved(&P, scratch);
    for (ignore = 0; ignore < 2; ignore++)
        for (L = 0; L < next.n; L++) {
            pid_t pid;
            int status, left;
            gm_save_params(&Q, path);   /* Q holds version 1, as loaded below */
            fflush(stdout);
            if ((pid = fork()) == 0) {
                struct rlimit lim;
                getrlimit(RLIMIT_FSIZE, &lim);
                lim.rlim_cur = (rlim_t)L;
                if (ignore) signal(SIGXFSZ, SIG_IGN);
                setrlimit(RLIMIT_FSIZE, &lim);
                _exit(gm_save_params(&P, path) ? 0 : strstr(gm_last_error(), path) ? 1 : 2);
            }
            waitpid(pid, &status, 0);
            if (!ignore && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ)) problem("bytes", "no SIGXFSZ");
            if (ignore && !(WIFEXITED(status) && WEXITSTATUS(status) == 1)) problem("bytes", "a save past the size limit did not fail naming the file");
            if (check_after(path, prev, next, &Q, "bytes")) problem("bytes", "a cut save was published");
            size = -1;
            left = sweep(dir, "model.ckpt", &size);
            if (!ignore && (left != 1 || size != L)) problem("bytes", "the killed save's temporary is not L bytes long");
            if (ignore && left) problem("bytes", "a failed save left its temporary behind");
            ends[ignore]++;
        }
    printf("bytes: a %ld-byte save killed by SIGXFSZ after each of bytes 0..%ld (%d kills), and failing there\n"
           "       with SIGXFSZ ignored (%d failed saves): the old version stayed and loaded every time\n",
           next.n, next.n - 1, ends[0], ends[1]);
    free(prev.b);
    free(next.b);
    gm_params_free(&P);
    gm_params_free(&Q);
}

#define SAVERS 3
static void savers(const char *top, double seconds)
{
    char dir[512], path[600], scratch[600];
    gm_params P[SAVERS], Q;
    bytes ref[SAVERS];
    pid_t pid[SAVERS];
    int fd[SAVERS][2], s, left;
    long loads = 0, bad = 0, done[2] = {0, 0}, size;
    double until = gm_seconds() + seconds;
    place(top, "savers", dir, path, scratch);
    model(&Q, 256, 64);
    for (s = 0; s < SAVERS; s++) {
        model(&P[s], 256, 64);
        fill(&P[s], 100u + (unsigned)s);
        ref[s] = saved(&P[s], scratch);
    }
    size = ref[0].n;
    gm_save_params(&P[0], path);
    fflush(stdout);
    for (s = 0; s < SAVERS; s++) {
        if (pipe(fd[s]) != 0) { problem("savers", "pipe"); return; }
        if ((pid[s] = fork()) == 0) {   /* a saver: count saves and failures, report them */
            long n[2] = {0, 0};
            while (gm_seconds() < until)
                if (gm_save_params(&P[s], path)) n[0]++;
                else if (++n[1] <= 3) printf("FAIL savers: %s\n", gm_last_error());
            fflush(stdout);
            _exit(write(fd[s][1], n, sizeof n) == (ssize_t)sizeof n ? 0 : 1);
        }
        close(fd[s][1]);
    }
    while (gm_seconds() < until) {   /* the loader: the bytes, then gm_load_params */
        bytes now = read_all(path);
        int k, ok = 0;
        for (k = 0; k < SAVERS; k++) ok |= same(now, ref[k]);
        if (!ok) problem("savers", "a load read a file that is none of the savers' versions");
        if (!gm_load_params(&Q, path)) problem("savers", gm_last_error());
        bad += !ok;
        loads++;
        free(now.b);
    }
    for (s = 0; s < SAVERS; s++) {
        long n[2] = {0, 0};
        if (read(fd[s][0], n, sizeof n) != (ssize_t)sizeof n) problem("savers", "a saver died");
        close(fd[s][0]);
        waitpid(pid[s], NULL, 0);
        done[0] += n[0];
        done[1] += n[1];
        free(ref[s].b);
        gm_params_free(&P[s]);
    }
    if (done[1]) problem("savers", "saves failed");
    left = sweep(dir, "model.ckpt", NULL);
    if (left) problem("savers", "temporaries were left behind");
    printf("savers: %d processes saved a %ld-byte checkpoint to one path %ld times in %.0f s (%ld failed)\n"
           "        while %ld loads read it (%ld saw a broken file); %d temporaries left\n",
           SAVERS, size, done[0] + done[1], seconds, done[1], loads, bad, left);
    gm_params_free(&Q);
}

int main(int argc, char **argv)
{
    int i, count = 200;
    double seconds = 3;
    for (i = 2; i + 1 < argc && argc % 2 == 0; i += 2) {
        if (strcmp(argv[i], "--kills") == 0) count = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0) seconds = atof(argv[i + 1]);
        else break;
    }
    if (argc < 2 || i < argc) { fprintf(stderr, "usage: %s DIR [--kills N] [--seconds S]\n", argv[0]); return 2; }
    if (mkdir(argv[1], 0777) != 0 && errno != EEXIST) { perror(argv[1]); return 2; }
    setvbuf(stdout, NULL, _IOLBF, 0);   /* whole lines, also from the savers */
    kills(argv[1], count);
    bytes_crash(argv[1]);
    savers(argv[1], seconds);
    if (failures) printf("crash_ckpt: %d failures\n", failures);
    else printf("crash_ckpt: ok\n");
    return failures != 0;
}
