/* ======================================================================================
 * 3. tensors and the tape
 *
 *   A tensor is float32 with up to 4 dims. Parameters live as long as the model that owns
 *   them (a gm_params list). Everything a training step makes lives on the tape: a bump
 *   arena emptied by gm_tape_reset in O(1). Each op computes its result at once and keeps,
 *   in the tensor it returns, how it was made (op, inputs, backward function). The tape is
 *   therefore in creation order, which is already a topological order: gm_backward is one
 *   reverse walk.
 *
 *   Lifetimes, checked in every build:
 *   - a tensor made on the tape lives until the next gm_tape_reset; using one from the step
 *     before stops with an error naming where it was made (tensors older than that are
 *     caught on a best-effort basis only: do not keep tape tensors across steps);
 *   - gm_backward runs once per step; a second call before gm_tape_reset is an error.
 * ====================================================================================== */
typedef struct gm_shape { int ndim; int d[4]; } gm_shape;

GMDEF gm_shape gm_shape1(int d0);
GMDEF gm_shape gm_shape2(int d0, int d1);
GMDEF gm_shape gm_shape3(int d0, int d1, int d2);
GMDEF gm_shape gm_shape4(int d0, int d1, int d2, int d3);

typedef struct gm_tensor gm_tensor;
typedef struct gm_tape gm_tape;
typedef void (*gm_kernel)(gm_tensor *y);   /* a forward or backward kernel, given the output */

enum {
    GM_PARAM  = 1,   /* trained by optimizers, saved in checkpoints, has a grad buffer   */
    GM_BUFFER = 2    /* saved in checkpoints but not trained (batch-norm running stats)  */
};

struct gm_tensor {
    gm_shape shape;
    int size;                   /* number of values: the product of the dims            */
    float *val;                 /* the values                                           */
    float *grad;                /* dloss/dval, or NULL when no gradient flows here      */
    int flags;                  /* GM_PARAM, GM_BUFFER, and private bits                */
    char *name;                 /* parameters: the name used in checkpoints, "enc1.w"   */
    /* how a tape tensor was made */
    const char *op;             /* "gm_relu"                                            */
    const char *file;           /* the caller that made it                              */
    int line;
    gm_kernel backward;         /* adds dloss/dy into the inputs' grads                 */
    gm_tensor *in[3];           /* the inputs                                           */
    int iarg[8];                /* integer arguments (strides, paddings, ...)           */
    float farg[2];              /* float arguments (slopes, epsilons, ...)              */
    float *saved;               /* whatever the backward needs from the forward         */
    gm_tensor *prev;            /* the tensor made just before this one on the tape     */
    gm_tape *tape;              /* the tape it lives on (NULL for parameters)           */
    unsigned long step;         /* the tape step it was made in                         */
};

/* Ops are macros that pass their caller's file and line, so errors can name them.
 * gm_relu(T, x) calls gm_relu_at(T, x, __FILE__, __LINE__). */
#define GM__SITE const char *file, int line
#define GM__HERE __FILE__, __LINE__

/* A tape with `bytes` of arena for one step's tensors (0: 512 MiB; untouched memory costs
 * nothing on systems with virtual memory). NULL with gm_last_error() if out of memory. */
GMDEF gm_tape *gm_tape_new(size_t bytes);
GMDEF void     gm_tape_free(gm_tape *T);
GMDEF void     gm_tape_reset(gm_tape *T);            /* forget every tensor of the step, O(1)  */
GMDEF size_t   gm_tape_peak(const gm_tape *T);       /* most arena bytes any step has used     */
GMDEF void    *gm_tape_alloc(gm_tape *T, size_t bytes); /* scratch memory until the next reset  */

/* A fresh tensor on the tape, filled with zeros / copied from data / filled with normals. */
GMDEF gm_tensor *gm_zeros_at(gm_tape *T, gm_shape s, GM__SITE);
GMDEF gm_tensor *gm_from_at(gm_tape *T, gm_shape s, const float *data, GM__SITE);
GMDEF gm_tensor *gm_randn_at(gm_tape *T, gm_shape s, gm_rng *rng, GM__SITE);
#define gm_zeros(...) gm_zeros_at(__VA_ARGS__, GM__HERE)
#define gm_from(...)  gm_from_at(__VA_ARGS__, GM__HERE)
#define gm_randn(...) gm_randn_at(__VA_ARGS__, GM__HERE)

/* Backpropagate from a single-number loss: afterwards every parameter that the loss
 * depends on has p->grad = dloss/dp (overwritten, not accumulated), and so does every tape
 * tensor on the way. Returns the loss. A NaN or Inf loss stops with the step number and
 * the op that made it. */
GMDEF float gm_backward_at(gm_tape *T, gm_tensor *loss, GM__SITE);
#define gm_backward(...) gm_backward_at(__VA_ARGS__, GM__HERE)

GMDEF float gm_item(const gm_tensor *x);            /* the value of a one-number tensor */

/* Parameters: a model is a list of them, owned by the list. */
typedef struct gm_params { gm_tensor **t; int n, cap; } gm_params;
GMDEF gm_tensor *gm_param_new(gm_params *P, const char *name, gm_shape s);  /* zeros, GM_PARAM  */
GMDEF gm_tensor *gm_buffer_new(gm_params *P, const char *name, gm_shape s); /* zeros, GM_BUFFER */
GMDEF long       gm_params_count(const gm_params *P);   /* trainable numbers */
GMDEF void       gm_params_free(gm_params *P);

/* ======================================================================================
 * 4. ops
 *   Each returns a new tensor on the tape. Elementwise ops keep the shape of x.
 * ====================================================================================== */
/* Binary ops: b is the same shape as a, one number, or a vector broadcast along dim 1
 * of a: per feature of a (B,D), per channel of a (B,C,H,W). */
GMDEF gm_tensor *gm_add_at(gm_tape *T, gm_tensor *a, gm_tensor *b, GM__SITE);      /* y = a + b   */
GMDEF gm_tensor *gm_sub_at(gm_tape *T, gm_tensor *a, gm_tensor *b, GM__SITE);      /* y = a - b   */
GMDEF gm_tensor *gm_mul_at(gm_tape *T, gm_tensor *a, gm_tensor *b, GM__SITE);      /* y = a * b   */
GMDEF gm_tensor *gm_scale_at(gm_tape *T, gm_tensor *x, float s, GM__SITE);         /* y = s x     */
GMDEF gm_tensor *gm_matmul_at(gm_tape *T, gm_tensor *a, gm_tensor *b, GM__SITE);   /* (M,K)(K,N)  */
#define gm_add(...)    gm_add_at(__VA_ARGS__, GM__HERE)
#define gm_sub(...)    gm_sub_at(__VA_ARGS__, GM__HERE)
#define gm_mul(...)    gm_mul_at(__VA_ARGS__, GM__HERE)
#define gm_scale(...)  gm_scale_at(__VA_ARGS__, GM__HERE)
#define gm_matmul(...) gm_matmul_at(__VA_ARGS__, GM__HERE)

GMDEF gm_tensor *gm_relu_at(gm_tape *T, gm_tensor *x, GM__SITE);            /* max(0, x)          */
GMDEF gm_tensor *gm_leaky_relu_at(gm_tape *T, gm_tensor *x, float slope, GM__SITE); /* x>0 ? x : slope x */
GMDEF gm_tensor *gm_sigmoid_at(gm_tape *T, gm_tensor *x, GM__SITE);         /* 1 / (1 + e^-x)     */
GMDEF gm_tensor *gm_tanh_at(gm_tape *T, gm_tensor *x, GM__SITE);            /* tanh x             */
GMDEF gm_tensor *gm_softplus_at(gm_tape *T, gm_tensor *x, GM__SITE);        /* log(1 + e^x)       */
GMDEF gm_tensor *gm_silu_at(gm_tape *T, gm_tensor *x, GM__SITE);            /* x sigmoid(x)       */
GMDEF gm_tensor *gm_exp_at(gm_tape *T, gm_tensor *x, GM__SITE);             /* e^x                */
GMDEF gm_tensor *gm_log_at(gm_tape *T, gm_tensor *x, GM__SITE);             /* log x              */
GMDEF gm_tensor *gm_square_at(gm_tape *T, gm_tensor *x, GM__SITE);          /* x^2                */
#define gm_relu(...)       gm_relu_at(__VA_ARGS__, GM__HERE)
#define gm_leaky_relu(...) gm_leaky_relu_at(__VA_ARGS__, GM__HERE)
#define gm_sigmoid(...)    gm_sigmoid_at(__VA_ARGS__, GM__HERE)
#define gm_tanh(...)       gm_tanh_at(__VA_ARGS__, GM__HERE)
#define gm_softplus(...)   gm_softplus_at(__VA_ARGS__, GM__HERE)
#define gm_silu(...)       gm_silu_at(__VA_ARGS__, GM__HERE)
#define gm_exp(...)        gm_exp_at(__VA_ARGS__, GM__HERE)
#define gm_log(...)        gm_log_at(__VA_ARGS__, GM__HERE)
#define gm_square(...)     gm_square_at(__VA_ARGS__, GM__HERE)

GMDEF gm_tensor *gm_sum_at(gm_tape *T, gm_tensor *x, GM__SITE);             /* sum of all, (1)    */
GMDEF gm_tensor *gm_mean_at(gm_tape *T, gm_tensor *x, GM__SITE);            /* mean of all, (1)   */
GMDEF gm_tensor *gm_sum_per_example_at(gm_tape *T, gm_tensor *x, GM__SITE); /* (B,...) -> (B)     */
GMDEF gm_tensor *gm_mean_per_example_at(gm_tape *T, gm_tensor *x, GM__SITE);/* (B,...) -> (B)     */
#define gm_sum(...)              gm_sum_at(__VA_ARGS__, GM__HERE)
#define gm_mean(...)             gm_mean_at(__VA_ARGS__, GM__HERE)
#define gm_sum_per_example(...)  gm_sum_per_example_at(__VA_ARGS__, GM__HERE)
#define gm_mean_per_example(...) gm_mean_per_example_at(__VA_ARGS__, GM__HERE)

GMDEF gm_tensor *gm_reshape_at(gm_tape *T, gm_tensor *x, gm_shape s, GM__SITE); /* same values  */
GMDEF gm_tensor *gm_flatten_at(gm_tape *T, gm_tensor *x, GM__SITE);         /* (B,...) -> (B,D)   */
GMDEF gm_tensor *gm_concat_at(gm_tape *T, gm_tensor *a, gm_tensor *b, GM__SITE); /* along dim 1  */
GMDEF gm_tensor *gm_detach_at(gm_tape *T, gm_tensor *x, GM__SITE);          /* y = x, no gradient */
GMDEF gm_tensor *gm_upsample2x_at(gm_tape *T, gm_tensor *x, GM__SITE);      /* nearest, H,W x2    */
GMDEF gm_tensor *gm_avgpool2x2_at(gm_tape *T, gm_tensor *x, GM__SITE);      /* mean of 2x2 blocks */
#define gm_reshape(...)    gm_reshape_at(__VA_ARGS__, GM__HERE)
#define gm_flatten(...)    gm_flatten_at(__VA_ARGS__, GM__HERE)
#define gm_concat(...)     gm_concat_at(__VA_ARGS__, GM__HERE)
#define gm_detach(...)     gm_detach_at(__VA_ARGS__, GM__HERE)
#define gm_upsample2x(...) gm_upsample2x_at(__VA_ARGS__, GM__HERE)
#define gm_avgpool2x2(...) gm_avgpool2x2_at(__VA_ARGS__, GM__HERE)

/* Losses, one number per example, shape (B): average them with gm_mean. */
GMDEF gm_tensor *gm_mse_at(gm_tape *T, gm_tensor *pred, gm_tensor *target, GM__SITE);
    /* mean over the example's values of (pred - target)^2 */
GMDEF gm_tensor *gm_bernoulli_nll_at(gm_tape *T, gm_tensor *logits, gm_tensor *x, GM__SITE);
    /* -log p(x|l) = sum_d softplus(l_d) - x_d l_d, for x in [0,1] (binary cross-entropy) */
GMDEF gm_tensor *gm_gaussian_nll_at(gm_tape *T, gm_tensor *mean, gm_tensor *logvar, gm_tensor *x, GM__SITE);
    /* -log N(x; mean, e^logvar) = sum_d (log 2pi + logvar_d + (x_d - mean_d)^2 e^-logvar_d) / 2 */
#define gm_mse(...)            gm_mse_at(__VA_ARGS__, GM__HERE)
#define gm_bernoulli_nll(...)  gm_bernoulli_nll_at(__VA_ARGS__, GM__HERE)
#define gm_gaussian_nll(...)   gm_gaussian_nll_at(__VA_ARGS__, GM__HERE)

/* ======================================================================================
 * 5. layers
 *   A layer is a small struct of parameter pointers and settings; the params list owns
 *   the tensors. Default initialization is PyTorch's: weights and biases uniform in
 *   +-1/sqrt(fan_in). Re-initialize with gm_init_* where a paper says otherwise.
 * ====================================================================================== */
typedef struct gm_dense { gm_tensor *w, *b; int in, out; } gm_dense;     /* w (out,in), b (out) */
typedef struct gm_conv2d {
    gm_tensor *w, *b;           /* w (Cout, Cin, K, K), b (Cout) */
    int cin, cout, k, stride, pad;
} gm_conv2d;
typedef struct gm_conv_transpose2d {
    gm_tensor *w, *b;           /* w (Cin, Cout, K, K), b (Cout), as in PyTorch */
    int cin, cout, k, stride, pad, out_pad;
} gm_conv_transpose2d;
typedef struct gm_batchnorm {
    gm_tensor *gamma, *beta;    /* (C) learned scale and shift */
    gm_tensor *mean, *var;      /* (C) running statistics, GM_BUFFER */
    int c;
    float momentum, eps;        /* 0.1 and 1e-5 */
} gm_batchnorm;
enum { GM_EVAL = 0, GM_TRAIN = 1 };

GMDEF gm_dense gm_dense_new(gm_params *P, const char *name, int in, int out, gm_rng *rng);
GMDEF gm_conv2d gm_conv2d_new(gm_params *P, const char *name, int cin, int cout, int k,
                              int stride, int pad, gm_rng *rng);
GMDEF gm_conv_transpose2d gm_conv_transpose2d_new(gm_params *P, const char *name, int cin, int cout,
                              int k, int stride, int pad, int out_pad, gm_rng *rng);
GMDEF gm_batchnorm gm_batchnorm_new(gm_params *P, const char *name, int c);

/* y = x W^T + b:  x (B, in) -> (B, out) */
GMDEF gm_tensor *gm_dense_at(gm_tape *T, const gm_dense *l, gm_tensor *x, GM__SITE);
/* y[b,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v] x[b, c, S i - P + u, S j - P + v]
 * (B,Cin,H,W) -> (B,Cout,(H+2P-K)/S+1,(W+2P-K)/S+1) */
GMDEF gm_tensor *gm_conv2d_at(gm_tape *T, const gm_conv2d *l, gm_tensor *x, GM__SITE);
/* the adjoint of conv2d in x (plus a bias): (B,Cin,H,W) -> (B,Cout,(H-1)S-2P+K+OP,(W-1)S-2P+K+OP) */
GMDEF gm_tensor *gm_conv_transpose2d_at(gm_tape *T, const gm_conv_transpose2d *l, gm_tensor *x, GM__SITE);
/* y = gamma (x - mean) / sqrt(var + eps) + beta per feature (B,D) or channel (B,C,H,W);
 * GM_TRAIN: batch statistics, running ones updated; GM_EVAL: running statistics. */
GMDEF gm_tensor *gm_batchnorm_at(gm_tape *T, const gm_batchnorm *l, gm_tensor *x, int mode, GM__SITE);
#define gm_dense(...)            gm_dense_at(__VA_ARGS__, GM__HERE)
#define gm_conv2d(...)           gm_conv2d_at(__VA_ARGS__, GM__HERE)
#define gm_conv_transpose2d(...) gm_conv_transpose2d_at(__VA_ARGS__, GM__HERE)
#define gm_batchnorm(...)        gm_batchnorm_at(__VA_ARGS__, GM__HERE)

GMDEF void gm_init_uniform(gm_tensor *t, float lo, float hi, gm_rng *rng);
GMDEF void gm_init_normal(gm_tensor *t, float mean, float std, gm_rng *rng);

/* ======================================================================================
 * 6. optimizers
 * ====================================================================================== */
typedef struct gm_optim {
    float lr;                   /* may be changed between steps (schedules)              */
    float beta1, beta2, eps;    /* Adam; beta1 is the momentum of SGD                    */
    int adam;                   /* 1 Adam, 0 SGD                                         */
    long t;                     /* steps taken                                           */
    gm_params *P;
    float *m, *v;               /* one slot per trainable number, in params order       */
    long n;
} gm_optim;

/* SGD with momentum mu: v = mu v + g;  theta -= lr v   (mu = 0: plain SGD) */
GMDEF gm_optim *gm_sgd_new(gm_params *P, float lr, float momentum);
/* Adam (Kingma & Ba 2015), bias-corrected: m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 * theta -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps),  eps = 1e-8 */
GMDEF gm_optim *gm_adam_new(gm_params *P, float lr, float beta1, float beta2);
GMDEF void      gm_optim_step(gm_optim *o);   /* one update of every GM_PARAM from its grad */
GMDEF void      gm_optim_free(gm_optim *o);
/* Scale all gradients so their joint L2 norm is at most max_norm; returns the norm before. */
GMDEF float     gm_clip_grad_norm(gm_params *P, float max_norm);

/* ======================================================================================
 * checking gradients
 *   L = sum_i y_i r_i for a fixed random r; compares dL/dx from gm_backward with central
 *   differences (L(x + h) - L(x - h)) / 2h, in double, for every number of every input.
 *   Returns the worst relative error max_j |a_j - n_j| / max(|a_j|, |n_j|, 0.01 max_k |n_k|).
 * ====================================================================================== */
typedef gm_tensor *(*gm_build_fn)(gm_tape *T, void *ctx);
GMDEF double gm_grad_check(gm_build_fn build, void *ctx, gm_tensor **inputs, int n_inputs,
                           float h, uint64_t seed);

