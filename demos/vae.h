/* demos/vae.h - the variational autoencoder of lectures 05-08, shared by their demos.
 *
 *   encoder  q_phi(z|x) = N(mu(x), diag e^logvar(x))
 *   decoder  p_theta(x|z) = prod_d Bernoulli(x_d; sigmoid(logits_d(z)))   (x in [0,1])
 *   prior    p(z) = N(0, I)
 *   -ELBO(x) = E_q[-log p(x|z)] + beta KL(q(z|x) || p(z))
 *            ~ rec + beta kl   with one z = mu + sigma eps   (the reparameterization trick)
 *
 * Two architectures (--arch):
 *   VAE_MLP   the pytorch/examples VAE: 784-400 ReLU, heads 400->Z for mu and logvar;
 *             Z-400 ReLU-784 logits
 *   VAE_CONV  conv 1->32 k4 s2 p1, ReLU, conv 32->64 k4 s2 p1, ReLU (64x7x7), heads -> Z;
 *             Z -> dense 64x7x7, ReLU, convT 64->32 k4 s2 p1, ReLU, convT 32->1 k4 s2 p1
 *
 * vae_loss builds one training step's objective; vae_train runs the epochs (beta, KL
 * annealing and free bits from vae_cfg); vae_eval averages -ELBO and its two terms over a
 * data set; vae_encode_all keeps mu and logvar of every example for the latent-space demos,
 * and vae_kl_per_dim and vae_log_aggregate measure them; vae_log_weights gives importance
 * weights for the IWAE bound and the likelihood estimates of lectures 04 and 08, and
 * vae_group_estimates, vae_mean_sd and vae_weight_stats turn a table of log weights into
 * estimates, their spread, the effective sample size and KL(posterior || proposal);
 * vae_pixel_variance says how much a set of images varies (samples against data).
 * Include after demo.h. */
#ifndef GENMOD_DEMO_VAE_H
#define GENMOD_DEMO_VAE_H

enum { VAE_MLP, VAE_CONV };

/* What a VAE demo works with besides its model: random numbers seeded by --seed, one tape,
 * and the images (demo_images: Fashion-MNIST or the built-in shapes; n_quick with --quick). */
typedef struct vae_lab { gm_rng rng; gm_tape *T; gm_dataset train, test; } vae_lab;

static inline vae_lab vae_lab_open(demo *d, int n_quick)
{
    vae_lab L;
    L.rng = gm_rng_new(d->seed);
    L.T = gm_tape_new(0);
    demo_check(d, L.T != NULL, "making the tape");
    demo_images(d, &L.train, &L.test, n_quick);
    return L;
}

/* Free the model, the tape and the data; print the run time. */
static inline int vae_lab_close(demo *d, vae_lab *L, gm_params *model)
{
    gm_params_free(model);
    gm_tape_free(L->T);
    gm_dataset_free(&L->train);
    gm_dataset_free(&L->test);
    demo_done(d);
    return 0;
}

typedef struct vae {
    gm_params P;
    int arch, Z;
    gm_dense e1, e_mu, e_lv, d1, d2;         /* VAE_MLP (e_mu, e_lv, d1 also VAE_CONV's heads) */
    gm_conv2d c1, c2;                        /* VAE_CONV encoder */
    gm_conv_transpose2d t1, t2;              /* VAE_CONV decoder */
} vae;

/* "mlp" or "conv" from --arch */
static inline int vae_arch(const demo *d)
{
    const char *a = demo_str(d, "--arch", "mlp");
    if (strcmp(a, "mlp") == 0) return VAE_MLP;
    if (strcmp(a, "conv") == 0) return VAE_CONV;
    fprintf(stderr, "%s: --arch is mlp or conv, got \"%s\"\n", d->name, a);
    exit(2);
}

static inline vae vae_new(int arch, int Z, gm_rng *rng)
{
    vae m;
    memset(&m, 0, sizeof m);
    m.arch = arch; m.Z = Z;
    if (arch == VAE_MLP) {
        m.e1   = gm_dense_new(&m.P, "enc1", 784, 400, rng);
        m.e_mu = gm_dense_new(&m.P, "enc_mu", 400, Z, rng);
        m.e_lv = gm_dense_new(&m.P, "enc_logvar", 400, Z, rng);
        m.d1   = gm_dense_new(&m.P, "dec1", Z, 400, rng);
        m.d2   = gm_dense_new(&m.P, "dec2", 400, 784, rng);
    } else {
        m.c1   = gm_conv2d_new(&m.P, "enc_conv1", 1, 32, 4, 2, 1, rng);
        m.c2   = gm_conv2d_new(&m.P, "enc_conv2", 32, 64, 4, 2, 1, rng);
        m.e_mu = gm_dense_new(&m.P, "enc_mu", 64 * 7 * 7, Z, rng);
        m.e_lv = gm_dense_new(&m.P, "enc_logvar", 64 * 7 * 7, Z, rng);
        m.d1   = gm_dense_new(&m.P, "dec1", Z, 64 * 7 * 7, rng);
        m.t1   = gm_conv_transpose2d_new(&m.P, "dec_convT1", 64, 32, 4, 2, 1, 0, rng);
        m.t2   = gm_conv_transpose2d_new(&m.P, "dec_convT2", 32, 1, 4, 2, 1, 0, rng);
    }
    return m;
}

/* q(z|x): x (B,1,28,28) -> mu, logvar (B,Z) */
static inline void vae_encode(gm_tape *T, const vae *m, gm_tensor *x, gm_tensor **mu, gm_tensor **logvar)
{
    gm_tensor *h;
    if (m->arch == VAE_MLP) {
        h = gm_relu(T, gm_dense(T, &m->e1, gm_flatten(T, x)));
    } else {
        h = gm_relu(T, gm_conv2d(T, &m->c1, x));
        h = gm_flatten(T, gm_relu(T, gm_conv2d(T, &m->c2, h)));
    }
    *mu = gm_dense(T, &m->e_mu, h);
    *logvar = gm_dense(T, &m->e_lv, h);
}

/* p(x|z): z (B,Z) -> logits (B,1,28,28); the pixel means are sigmoid(logits) */
static inline gm_tensor *vae_decode(gm_tape *T, const vae *m, gm_tensor *z)
{
    int B = z->shape.d[0];
    gm_tensor *h = gm_relu(T, gm_dense(T, &m->d1, z));
    if (m->arch == VAE_MLP) return gm_reshape(T, gm_dense(T, &m->d2, h), gm_shape4(B, 1, 28, 28));
    h = gm_reshape(T, h, gm_shape4(B, 64, 7, 7));
    h = gm_relu(T, gm_conv_transpose2d(T, &m->t1, h));
    return gm_conv_transpose2d(T, &m->t2, h);
}

/* The pieces of -ELBO for one batch, one number per example (B) except kl_dim (B,Z). */
typedef struct vae_terms { gm_tensor *mu, *logvar, *z, *logits, *rec, *kl_dim, *kl; } vae_terms;

/* ... for a given q(z|x) = N(mu, e^logvar), one z per row (lecture 08 fits q per image) */
static inline vae_terms vae_terms_of(gm_tape *T, const vae *m, gm_tensor *x, gm_tensor *mu, gm_tensor *logvar,
                                     gm_rng *rng)
{
    vae_terms t;
    t.mu = mu; t.logvar = logvar;
    t.z = gm_reparameterize(T, t.mu, t.logvar, rng);           /* z = mu + sigma eps         */
    t.logits = vae_decode(T, m, t.z);
    t.rec = gm_bernoulli_nll(T, t.logits, x);                   /* -log p(x|z)                */
    t.kl_dim = gm_kl_normal_std(T, t.mu, t.logvar);             /* KL(q(z|x) || N(0,I)) per j */
    t.kl = gm_sum_per_example(T, t.kl_dim);
    return t;
}

/* ... for the encoder's q(z|x) */
static inline vae_terms vae_forward(gm_tape *T, const vae *m, gm_tensor *x, gm_rng *rng)
{
    gm_tensor *mu, *logvar;
    vae_encode(T, m, x, &mu, &logvar);
    return vae_terms_of(T, m, x, mu, logvar, rng);
}

/* How to weigh the KL term while training. */
typedef struct vae_cfg {
    int epochs, B;
    float lr;
    float rec_weight;       /* 1; 0 trains on the KL alone (vae_regularization)               */
    float beta;             /* the KL weight at the end of annealing (1: the ELBO)            */
    long anneal_steps;      /* > 0: beta rises linearly from 0 over this many steps           */
    float free_bits;        /* > 0: the KL term is sum_j max(lambda, mean_b KL_bj)            */
    int verbose;            /* print a line per epoch with the test -ELBO                     */
    float *curve_rec, *curve_kl;  /* if not NULL: the batch means of rec and kl at every step  */
} vae_cfg;

static inline vae_cfg vae_cfg_default(int epochs)
{
    vae_cfg c;
    memset(&c, 0, sizeof c);
    c.epochs = epochs; c.B = 128; c.lr = 1e-3f; c.rec_weight = 1.0f; c.beta = 1.0f; c.verbose = 1;
    return c;
}

/* The batch loss: mean_b (w rec_b + beta_t kl_b), or with free bits
 * mean_b w rec_b + beta_t sum_j max(lambda, mean_b KL_bj). */
static inline gm_tensor *vae_loss(gm_tape *T, const vae_terms *t, const vae_cfg *c, long step)
{
    float beta = c->beta * (c->anneal_steps > 0 ? gm_anneal_linear(step, c->anneal_steps) : 1.0f);
    gm_tensor *rec = gm_mean(T, t->rec), *kl;
    if (c->free_bits > 0) kl = gm_free_bits(T, t->kl_dim, c->free_bits, 1);
    else kl = gm_mean(T, t->kl);
    rec = gm_scale(T, rec, c->rec_weight);
    kl = gm_scale(T, kl, beta);
    return gm_add(T, rec, kl);
}

/* Averages over a data set of -ELBO = rec + kl (one z per example), in nats per image. */
typedef struct vae_score { double neg_elbo, rec, kl; } vae_score;

static inline vae_score vae_eval(gm_tape *T, const vae *m, const gm_dataset *ds, gm_rng *rng)
{
    vae_score s = {0, 0, 0};
    int i, b, nb = gm_batches(ds, 500);
    for (i = 0; i < nb; i++) {
        vae_terms t;
        gm_tape_reset(T);
        t = vae_forward(T, m, gm_batch(T, ds, i, 500), rng);
        for (b = 0; b < t.rec->size; b++) { s.rec += t.rec->val[b]; s.kl += t.kl->val[b]; }
    }
    s.rec /= ds->n; s.kl /= ds->n;
    s.neg_elbo = s.rec + s.kl;
    return s;
}

/* Train for c->epochs, shuffling each epoch; with c->verbose print train and test -ELBO per
 * epoch. Returns the last test score (on `test`; NULL skips testing and returns zeros). */
static inline vae_score vae_train(vae *m, gm_dataset *train, const gm_dataset *test, const vae_cfg *c,
                                  gm_tape *T, gm_rng *rng, const char *what)
{
    gm_optim *opt = gm_adam_new(&m->P, c->lr, 0.9f, 0.999f);
    vae_score s = {0, 0, 0};
    long steps_per_epoch = gm_batches(train, c->B), step = 0;
    int e;
    for (e = 0; e < c->epochs; e++) {
        double sum_rec = 0, sum_kl = 0;
        gm_progress bar = gm_progress_start(what, steps_per_epoch);
        long i;
        gm_dataset_shuffle(train, rng);
        for (i = 0; i < steps_per_epoch; i++, step++) {
            vae_terms t;
            double rec = 0, kl = 0;
            int b;
            gm_tape_reset(T);
            t = vae_forward(T, m, gm_batch(T, train, i, c->B), rng);
            gm_backward(T, vae_loss(T, &t, c, step));
            gm_optim_step(opt);
            for (b = 0; b < t.rec->size; b++) { rec += t.rec->val[b]; kl += t.kl->val[b]; }
            sum_rec += rec; sum_kl += kl;
            rec /= t.rec->size; kl /= t.rec->size;
            if (c->curve_rec) { c->curve_rec[step] = (float)rec; c->curve_kl[step] = (float)kl; }
            gm_progress_update(&bar, i + 1, "rec %.1f kl %.2f", rec, kl);
        }
        gm_progress_finish(&bar);
        if (test) s = vae_eval(T, m, test, rng);
        if (c->verbose) {
            printf("epoch %2d   train -ELBO %7.2f (rec %7.2f kl %5.2f)", e + 1, (sum_rec + sum_kl) / train->n,
                   sum_rec / train->n, sum_kl / train->n);
            if (test) printf("   test -ELBO %7.2f (rec %7.2f kl %5.2f)", s.neg_elbo, s.rec, s.kl);
            printf("\n");
        }
    }
    gm_optim_free(opt);
    return s;
}

/* mu and logvar of every example of ds, (n, Z) each, malloc'ed. */
static inline void vae_encode_all(gm_tape *T, const vae *m, const gm_dataset *ds, float **mu, float **logvar)
{
    int i, nb = gm_batches(ds, 500), Z = m->Z;
    *mu = (float *)malloc((size_t)ds->n * Z * sizeof(float));
    *logvar = (float *)malloc((size_t)ds->n * Z * sizeof(float));
    for (i = 0; i < nb; i++) {
        gm_tensor *mu_b, *lv_b;
        gm_tape_reset(T);
        vae_encode(T, m, gm_batch(T, ds, i, 500), &mu_b, &lv_b);
        memcpy(*mu + (size_t)i * 500 * Z, mu_b->val, (size_t)mu_b->size * sizeof(float));
        memcpy(*logvar + (size_t)i * 500 * Z, lv_b->val, (size_t)lv_b->size * sizeof(float));
    }
}

/* The mean over n encoded examples of KL(q(z_j|x) || N(0, 1)) for each latent dimension j,
 * from their mu and logvar (n, Z), into kl (Z values); returns the sum over j. */
static inline double vae_kl_per_dim(gm_tape *T, const float *mu, const float *logvar, int n, int Z, double *kl)
{
    double total = 0;
    int i, j;
    for (j = 0; j < Z; j++) kl[j] = 0;
    for (i = 0; i < n; i += 500) {
        int b = n - i < 500 ? n - i : 500;
        gm_tensor *k;
        gm_tape_reset(T);
        k = gm_kl_normal_std(T, gm_from(T, gm_shape2(b, Z), mu + (size_t)i * Z),
                             gm_from(T, gm_shape2(b, Z), logvar + (size_t)i * Z));
        for (j = 0; j < k->size; j++) kl[j % Z] += k->val[j];
    }
    for (j = 0; j < Z; j++) { kl[j] /= n; total += kl[j]; }
    return total;
}

/* The aggregate posterior q(z) = (1/n) sum_i N(z; mu_i, diag e^logvar_i) of n encoded examples
 * (mu, logvar (n, Z)), evaluated at m points z (m, Z): log q into out (m). The table of
 * component log-densities, then gm_logsumexp over i (>>probability), minus log n. */
static inline void vae_log_aggregate(gm_tape *T, const float *mu, const float *logvar, int n, int Z,
                                     const float *z, int m, float *out)
{
    const float log_2pi = 1.8378771f;
    float *ivar = (float *)malloc(sizeof(float) * n * Z), *lognorm = (float *)malloc(sizeof(float) * n);
    int i, b, c, j;
    for (c = 0; c < n; c++) {                     /* per component: e^-logvar and its log normalizer */
        float lv = 0;
        for (j = 0; j < Z; j++) { ivar[c * Z + j] = expf(-logvar[c * Z + j]); lv += logvar[c * Z + j]; }
        lognorm[c] = -0.5f * Z * log_2pi - 0.5f * lv;
    }
    for (i = 0; i < m; i += 256) {
        int nb = m - i < 256 ? m - i : 256;
        gm_tensor *logc, *lse;
        gm_tape_reset(T);
        logc = gm_zeros(T, gm_shape2(nb, n));                 /* log N(z_b; mu_c, e^logvar_c) */
        for (b = 0; b < nb; b++)
            for (c = 0; c < n; c++) {
                float q = 0;
                for (j = 0; j < Z; j++) {
                    float d = z[(size_t)(i + b) * Z + j] - mu[c * Z + j];
                    q += d * d * ivar[c * Z + j];
                }
                logc->val[(size_t)b * n + c] = lognorm[c] - 0.5f * q;
            }
        lse = gm_logsumexp(T, logc);
        for (b = 0; b < nb; b++) out[i + b] = lse->val[b] - logf((float)n);
    }
    free(ivar); free(lognorm);
}

/* Importance sampling of p(x) = E_r[p(x|z) p(z) / r(z|x)] with one of two proposals r:
 * VAE_PROPOSE_Q, the encoder's q(z|x), or VAE_PROPOSE_PRIOR, p(z) = N(0, I). */
enum { VAE_PROPOSE_Q, VAE_PROPOSE_PRIOR };

/* S draws z ~ r(z|x) = N(rm, e^rl) for each image of x, laid out (B S, Z) as gm_repeat makes
 * them; *rm, *rl receive the proposal's parameters in the same layout. */
static inline gm_tensor *vae_propose(gm_tape *T, const vae *m, gm_tensor *x, int S, int proposal, gm_rng *rng,
                                     gm_tensor **rm, gm_tensor **rl)
{
    if (proposal == VAE_PROPOSE_Q) {
        gm_tensor *mu, *logvar;
        vae_encode(T, m, x, &mu, &logvar);
        *rm = gm_repeat(T, mu, S);                    /* (B S, Z): image b's row S times */
        *rl = gm_repeat(T, logvar, S);
    } else {
        *rm = *rl = gm_zeros(T, gm_shape2(x->shape.d[0] * S, m->Z));
    }
    return gm_reparameterize(T, *rm, *rl, rng);       /* z = rm + e^(rl/2) eps */
}

/* The log importance weights of S draws per image, (B S) with image b's in a row:
 *     log w_bs = log p(x_b|z_bs) + log p(z_bs) - log r(z_bs|x_b),   z_bs ~ r(z|x_b).
 * gm_iwae(T, logw, S) turns them into IWAE_S; with the prior as r the last two terms cancel
 * and this is the naive Monte Carlo estimate. Differentiable in the decoder (and encoder). */
static inline gm_tensor *vae_log_weights(gm_tape *T, const vae *m, gm_tensor *x, int S, int proposal, gm_rng *rng)
{
    gm_tensor *rm, *rl, *z, *logits, *xs, *rec, *zero, *nlp, *nlr, *logw;
    z = vae_propose(T, m, x, S, proposal, rng, &rm, &rl);
    logits = vae_decode(T, m, z);
    xs = gm_repeat(T, x, S);
    rec = gm_bernoulli_nll(T, logits, xs);            /* -log p(x|z) */
    zero = gm_zeros(T, z->shape);
    nlp = gm_gaussian_nll(T, zero, zero, z);          /* -log p(z)   */
    nlr = gm_gaussian_nll(T, rm, rl, z);              /* -log r(z|x) */
    logw = gm_sub(T, nlr, nlp);                       /* log p(z) - log r(z|x) */
    return gm_sub(T, logw, rec);                      /* + log p(x|z)          */
}

/* From log weights to estimates (lectures 04 and 08). logw (n, K) holds K log weights per
 * image, image i's in row i. Cut into K/k disjoint groups of k, each group is one
 * independent estimate IWAE_k = log (1/k) sum_s w_s (gm_iwae): into est (n, K/k). */
static inline void vae_group_estimates(gm_tape *T, const float *logw, int n, int K, int k, float *est)
{
    gm_tensor *e;
    gm_tape_reset(T);
    e = gm_iwae(T, gm_from(T, gm_shape1(n * K), logw), k);     /* image i's at i K/k ... */
    memcpy(est, e->val, (size_t)e->size * sizeof(float));
}

/* The mean of the estimates est (n, g) over images and groups; *sd receives the standard
 * deviation of one estimate: across the g groups of an image, averaged over images (0 if
 * g = 1). */
static inline double vae_mean_sd(const float *est, int n, int g, double *sd)
{
    double mean = 0.0, spread = 0.0;
    int i, j;
    for (i = 0; i < n; i++) {
        const float *e = est + (size_t)i * g;
        double m = 0.0, v = 0.0;
        for (j = 0; j < g; j++) m += e[j] / g;
        for (j = 0; j < g; j++) v += (e[j] - m) * (e[j] - m);
        mean += m / n;
        if (g > 1) spread += sqrt(v / (g - 1)) / n;
    }
    *sd = spread;
    return mean;
}

/* What the normalized weights w~_s = w_s / sum_t w_t of each row of logw (n, K) say, averaged
 * over rows:
 *   ess  the effective sample size (sum w)^2 / sum w^2 = 1 / sum w~^2: K for equal weights,
 *        1 when one draw carries everything;
 *   kl   the self-normalized estimate of KL(target || proposal), the target being the
 *        posterior p(z|x) and the proposal r the weights' own:
 *            KL(p(z|x) || r) = E_p(z|x)[log w] - log p(x)  ~  sum_s w~_s log w_s - log (1/K) sum_s w_s
 *        which is log K + sum_s w~_s log w~_s: never above log K, so it can only report a KL
 *        up to the log of the number of draws (consistent as K grows, biased for finite K). */
typedef struct vae_weights { double ess, kl; } vae_weights;

static inline vae_weights vae_weight_stats(const float *logw, int n, int K)
{
    vae_weights r = {0, 0};
    int i, s;
    for (i = 0; i < n; i++) {
        const float *lw = logw + (size_t)i * K;
        double mx = lw[0], w1 = 0, w2 = 0, wl = 0;
        for (s = 1; s < K; s++) if (lw[s] > mx) mx = lw[s];
        for (s = 0; s < K; s++) {                     /* w_s e^-mx: nothing underflows to 0/0 */
            double w = exp(lw[s] - mx);
            w1 += w; w2 += w * w; wl += w * lw[s];
        }
        r.ess += w1 * w1 / w2 / n;
        r.kl += (wl / w1 - mx - log(w1 / K)) / n;
    }
    return r;
}

/* The variance across n images x (n, D) of each pixel, averaged over the D pixels: how much
 * a set of images varies (0: all alike). Lectures 04 and 05 hold samples against data by it. */
static inline double vae_pixel_variance(const float *x, int n, int D)
{
    double total = 0;
    int i, j;
    for (j = 0; j < D; j++) {
        double s = 0, s2 = 0;
        for (i = 0; i < n; i++) { double v = x[(size_t)i * D + j]; s += v; s2 += v * v; }
        total += s2 / n - (s / n) * (s / n);
    }
    return total / D;
}

/* Decode n codes z (n, Z) into pixel means sigmoid(logits), (n, 1, 28, 28), into out. */
static inline void vae_decode_all(gm_tape *T, const vae *m, const float *z, int n, float *out)
{
    int i, j;
    for (i = 0; i < n; i += 500) {
        int b = n - i < 500 ? n - i : 500;
        gm_tensor *p;
        gm_tape_reset(T);
        p = gm_sigmoid(T, vae_decode(T, m, gm_from(T, gm_shape2(b, m->Z), z + (size_t)i * m->Z)));
        for (j = 0; j < p->size; j++) out[(size_t)i * 784 + j] = p->val[j];
    }
}

/* n samples x ~ p(x|z) means with z ~ N(0, I): saved as <out>/samples.npy (n,1,28,28) and
 * the first `show` as a PNG grid. */
static inline void vae_save_samples(demo *d, gm_tape *T, const vae *m, int n, int show, const char *png, gm_rng *rng)
{
    float *z = (float *)malloc((size_t)n * m->Z * sizeof(float)), *x = (float *)malloc((size_t)n * 784 * sizeof(float));
    int shape[4] = {n, 1, 28, 28}, i;
    for (i = 0; i < n * m->Z; i++) z[i] = gm_rng_normal(rng);
    vae_decode_all(T, m, z, n, x);
    demo_check(d, gm_save_npy(demo_path(d, "samples.npy"), x, 4, shape), "saving samples.npy");
    demo_check(d, gm_save_image_grid(demo_path(d, png), x, show < n ? show : n, 1, 28, 28, 0, 0, 1), "saving samples");
    free(z); free(x);
}

#endif
