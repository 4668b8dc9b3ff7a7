/* tests/test_io.c - checkpoints: round trip (the optimizer's state too), and every kind of
 * bad file leaves the model unchanged with a reason naming the file; a save writes only a
 * temporary of its own. Also mini-batching. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#  define _POSIX_C_SOURCE 200809L    /* opendir, lstat, symlink, getpid under strict -std=c99 */
#endif
#include "../genmod.h"
#include "test.h"
#include <stdlib.h>
#include <string.h>
#if !defined(_WIN32)
#  include <dirent.h>
#  include <sys/stat.h>
#  include <unistd.h>
#endif

typedef struct model { gm_params P; gm_dense a; gm_batchnorm bn; } model;

static model make(int out, uint64_t seed)
{
    model m;
    gm_rng r = gm_rng_new(seed);
    memset(&m, 0, sizeof m);
    m.a = gm_dense_new(&m.P, "a", 3, out, &r);
    m.bn = gm_batchnorm_new(&m.P, "bn", out);
    gm_init_normal(m.bn.mean, 0, 1, &r);
    return m;
}

static int same_values(const gm_params *x, const gm_params *y)
{
    int i;
    for (i = 0; i < x->n; i++)
        if (memcmp(x->t[i]->val, y->t[i]->val, (size_t)x->t[i]->size * sizeof(float))) return 0;
    return 1;
}

static void path(char *buf, const char *name) { snprintf(buf, 512, "%s/%s", gm_test_dir, name); }

static void write_bytes(const char *p, const unsigned char *b, size_t n)
{
    FILE *f = fopen(p, "wb");
    if (f) { fwrite(b, 1, n, f); fclose(f); }
}

static unsigned char *read_bytes(const char *p, size_t *n)
{
    FILE *f = fopen(p, "rb");
    unsigned char *b = (unsigned char *)malloc(1 << 16);
    *n = f ? fread(b, 1, 1 << 16, f) : 0;
    if (f) fclose(f);
    return b;
}

/* How many files in the test folder are named "<name>." and more (temporaries of name). */
static int files_after(const char *name)
{
    int n = 0;
#if !defined(_WIN32)
    DIR *d = opendir(gm_test_dir);
    struct dirent *e;
    size_t len = strlen(name);
    while (d && (e = readdir(d)) != NULL) n += strncmp(e->d_name, name, len) == 0 && e->d_name[len] == '.';
    if (d) closedir(d);
#else
    (void)name;
#endif
    return n;
}

static void checkpoint_round_trip(void)
{
    model m = make(4, 1), n = make(4, 2);
    char p[512];
    path(p, "model.ckpt");
    EXPECT(!same_values(&m.P, &n.P));
    EXPECT(gm_save_params(&m.P, p));
    EXPECT(files_after("model.ckpt") == 0);          /* the temporary file was renamed away */
    EXPECT(gm_load_params(&n.P, p));
    EXPECT(same_values(&m.P, &n.P));                 /* weights and running statistics */
    gm_params_free(&m.P);
    gm_params_free(&n.P);
}

/* One Adam step of model m on the loss sum(dense(x)^2) with a fixed x. */
static void adam_step(model *m, gm_optim *o)
{
    gm_tape *T = gm_tape_new(1 << 20);
    float x[6] = {1, -2, 0.5f, 0.3f, 1, -1};
    gm_backward(T, gm_sum(T, gm_square(T, gm_dense(T, &m->a, gm_from(T, gm_shape2(2, 3), x)))));
    gm_optim_step(o);
    gm_tape_free(T);
}

/* Training resumed from saved parameters and optimizer state goes on exactly as if it had
 * not stopped: three steps in one go equal two steps, a save, a load into a fresh model
 * and optimizer, and a third step. An optimizer of another kind or for another model
 * refuses the file, naming it, and keeps its state. */
static void optimizer_state_round_trip(void)
{
    model m = make(4, 1), n = make(4, 1), other = make(5, 1);
    gm_optim *o = gm_adam_new(&m.P, 0.1f, 0.9f, 0.999f), *p = gm_adam_new(&n.P, 0.1f, 0.9f, 0.999f);
    gm_optim *sgd = gm_sgd_new(&n.P, 0.1f, 0.9f), *wrong = gm_adam_new(&other.P, 0.1f, 0.9f, 0.999f);
    char pm[512], po[512];
    path(pm, "resume.ckpt"); path(po, "resume.optim");
    adam_step(&m, o); adam_step(&m, o);
    EXPECT(gm_save_params(&m.P, pm) && gm_save_optim(o, po));
    adam_step(&m, o);                                   /* the run that did not stop */
    EXPECT(gm_load_params(&n.P, pm) && gm_load_optim(p, po));
    EXPECT(p->t == 2 && p->updates[0] == 2);
    adam_step(&n, p);
    EXPECT(same_values(&m.P, &n.P));
    EXPECT(!gm_load_optim(sgd, po) && strstr(gm_last_error(), po) != NULL && sgd->t == 0);
    EXPECT(!gm_load_optim(wrong, po) && strstr(gm_last_error(), po) != NULL && wrong->t == 0);
    gm_optim_free(o); gm_optim_free(p); gm_optim_free(sgd); gm_optim_free(wrong);
    gm_params_free(&m.P); gm_params_free(&n.P); gm_params_free(&other.P);
}

/* Load `bytes` as a checkpoint into a fresh model: it must fail, mention `want`, and leave
 * the model's values exactly as they were. */
static void expect_bad(const unsigned char *bytes, size_t n, const char *want)
{
    model m = make(4, 5), keep = make(4, 5);
    char p[512];
    path(p, "bad.ckpt");
    write_bytes(p, bytes, n);
    EXPECT(!gm_load_params(&m.P, p));
    EXPECT(strstr(gm_last_error(), "bad.ckpt") != NULL);
    if (!strstr(gm_last_error(), want)) printf("  message \"%s\" lacks \"%s\"\n", gm_last_error(), want);
    EXPECT(strstr(gm_last_error(), want) != NULL);
    EXPECT(same_values(&m.P, &keep.P));
    gm_params_free(&m.P);
    gm_params_free(&keep.P);
}

static void checkpoint_bad_files(void)
{
    model m = make(4, 1), other = make(5, 1);
    char p[512], q[512];
    size_t n, n5;
    unsigned char *good, *wide;
    path(p, "good.ckpt");
    path(q, "wide.ckpt");
    gm_save_params(&m.P, p);
    gm_save_params(&other.P, q);
    good = read_bytes(p, &n);
    wide = read_bytes(q, &n5);
    {   /* missing file */
        model k = make(4, 5);
        path(p, "no-such-file.ckpt");
        EXPECT(!gm_load_params(&k.P, p));
        EXPECT(strstr(gm_last_error(), "no-such-file.ckpt") != NULL);
        gm_params_free(&k.P);
    }
    expect_bad(good, 0, "bad magic");                       /* empty */
    expect_bad(good, 11, "bad magic");                      /* cut inside the header */
    expect_bad(good, n - 9, "checksum");                    /* cut inside the values */
    good[0] ^= 1;
    expect_bad(good, n, "bad magic");
    good[0] ^= 1;
    good[8] = 7;                                            /* version 7 */
    expect_bad(good, n, "version 7");
    good[8] = 1;
    good[40] ^= 0x10;                                       /* one flipped bit */
    expect_bad(good, n, "checksum");
    good[40] ^= 0x10;
    expect_bad(wide, n5, "is (5,3) in the file but (4,3) in the model");
    gm_params_free(&m.P);
    gm_params_free(&other.P);
    free(good);
    free(wide);
}

static void checkpoint_failed_save_keeps_old_file(void)
{
    model m = make(4, 1), n = make(4, 9);
    char p[512], bad[512];
    path(p, "keep.ckpt");
    EXPECT(gm_save_params(&m.P, p));
    path(bad, "missing-folder/x.ckpt");
    EXPECT(!gm_save_params(&n.P, bad));
    EXPECT(strstr(gm_last_error(), "missing-folder/x.ckpt") != NULL);
    EXPECT(gm_load_params(&n.P, p));                      /* the earlier file is intact */
    EXPECT(same_values(&m.P, &n.P));
    gm_params_free(&m.P);
    gm_params_free(&n.P);
}

/* The names a save in this process may try for its temporary: the old fixed one, then
 * "<path>.<pid>.<k>.tmp" for k = 0, 1, 2 (the first ones tried). */
static void temp_name(char *at, const char *p, int k)
{
#if !defined(_WIN32)
    if (k >= 0) { snprintf(at, 600, "%s.%ld.%d.tmp", p, (long)getpid(), k); return; }
#endif
    snprintf(at, 600, "%s.tmp", p);
}

/* A file that is already at "<path>.tmp" (another save's temporary, say) is left alone: each
 * save writes a temporary of its own. */
static void checkpoint_temporary_is_its_own(void)
{
    static const unsigned char other[] = "another save's bytes";
    model m = make(4, 1), n = make(4, 2);
    char p[512], at[600];
    unsigned char *got;
    size_t len;
    path(p, "own.ckpt");
    temp_name(at, p, -1);
    write_bytes(at, other, sizeof other);
    EXPECT(gm_save_params(&m.P, p));
    EXPECT(gm_load_params(&n.P, p));
    EXPECT(same_values(&m.P, &n.P));
    got = read_bytes(at, &len);
    EXPECT(len == sizeof other && memcmp(got, other, len) == 0);
    EXPECT(files_after("own.ckpt") == 1);                 /* that file, and no temporary */
    free(got);
    remove(at);
    gm_params_free(&m.P);
    gm_params_free(&n.P);
}

/* A symlink where the temporary would go is not followed (the save would write over the
 * file it points to): the temporary is created new, and another name is taken. */
static void checkpoint_symlink_not_followed(void)
{
#if !defined(_WIN32)
    static const unsigned char text[] = "not a checkpoint";
    model m = make(4, 1), n = make(4, 2);
    char p[512], victim[512], at[600];
    unsigned char *got;
    size_t len;
    struct stat st;
    int k;
    path(p, "link.ckpt");
    path(victim, "victim.txt");
    write_bytes(victim, text, sizeof text);
    for (k = -1; k < 3; k++) {
        temp_name(at, p, k);
        remove(at);                                       /* from an earlier run */
        EXPECT(symlink(victim, at) == 0);
    }
    EXPECT(gm_save_params(&m.P, p));
    EXPECT(gm_load_params(&n.P, p));
    EXPECT(same_values(&m.P, &n.P));
    EXPECT(lstat(p, &st) == 0 && S_ISREG(st.st_mode));   /* a file, not the link renamed */
    got = read_bytes(victim, &len);
    EXPECT(len == sizeof text && memcmp(got, text, len) == 0);
    free(got);
    EXPECT(files_after("link.ckpt") == 4);                /* the four links only */
    for (k = -1; k < 3; k++) {
        temp_name(at, p, k);
        EXPECT(lstat(at, &st) == 0 && S_ISLNK(st.st_mode));
        remove(at);
    }
    gm_params_free(&m.P);
    gm_params_free(&n.P);
#endif
}

static void batches_cover_an_epoch(void)
{
    gm_dataset ds;
    gm_tape *T = gm_tape_new(1 << 20);
    gm_rng r = gm_rng_new(3);
    int seen[10] = {0}, i, k, total = 0;
    gm_synthetic_2d(&ds, GM_RING8, 10, 1);
    gm_dataset_shuffle(&ds, &r);
    EXPECT(gm_batches(&ds, 4) == 3);
    for (i = 0; i < 3; i++) {
        gm_tensor *x = gm_batch(T, &ds, i, 4);
        int *y = gm_batch_labels(T, &ds, i, 4);
        EXPECT(x->shape.ndim == 2 && x->shape.d[1] == 2);
        EXPECT(x->shape.d[0] == (i < 2 ? 4 : 2));       /* the last batch holds the rest */
        for (k = 0; k < x->shape.d[0]; k++) {
            int id = ds.order[i * 4 + k];
            seen[id]++;
            total++;
            EXPECT(x->val[2 * k] == ds.x[2 * id] && y[k] == ds.y[id]);
        }
    }
    for (i = 0; i < 10; i++) EXPECT(seen[i] == 1);
    EXPECT(total == 10);
    EXPECT(gm_batch(T, &ds, 3, 4)->val[0] == gm_batch(T, &ds, 0, 4)->val[0]);   /* wraps */
    gm_dataset_free(&ds);
    gm_tape_free(T);
}

void tests_io(void)
{
    TEST(checkpoint_round_trip);
    TEST(optimizer_state_round_trip);
    TEST(checkpoint_bad_files);
    TEST(checkpoint_failed_save_keeps_old_file);
    TEST(checkpoint_temporary_is_its_own);
    TEST(checkpoint_symlink_not_followed);
    TEST(batches_cover_an_epoch);
}
