// >>batch
GMDEF int gm_batches(const gm_dataset *ds, int B) { return (ds->n + B - 1) / B; }

/* The first example of batch i and how many there are. */
static int gm__batch_range(const gm_dataset *ds, long i, int B, int *count, const char *op, GM__SITE)
{
    long j;
    if (!ds || ds->n < 1 || !ds->x) gm__fatal(file, line, op, "the data set is empty");
    if (B < 1) gm__fatal(file, line, op, "batch size must be >= 1, got %d", B);
    j = ((i % gm_batches(ds, B)) + gm_batches(ds, B)) % gm_batches(ds, B);
    *count = ds->n - (int)j * B < B ? ds->n - (int)j * B : B;
    return (int)j * B;
}

GMDEF gm_tensor *gm_batch_at(gm_tape *T, const gm_dataset *ds, long i, int B, GM__SITE)
{
    int count, start = gm__batch_range(ds, i, B, &count, "gm_batch", file, line), k;
    gm_shape s = ds->h == 1 && ds->w == 1 ? gm_shape2(count, ds->c) : gm_shape4(count, ds->c, ds->h, ds->w);
    gm_tensor *x = gm__node(T, s, "gm_batch", NULL, NULL, NULL, NULL, file, line);
    for (k = 0; k < count; k++)
        memcpy(x->val + (size_t)k * ds->d, ds->x + (size_t)ds->order[start + k] * ds->d, (size_t)ds->d * sizeof(float));
    return x;
}

GMDEF int *gm_batch_labels_at(gm_tape *T, const gm_dataset *ds, long i, int B, GM__SITE)
{
    int count, start = gm__batch_range(ds, i, B, &count, "gm_batch_labels", file, line), k;
    int *y = (int *)gm__arena(T, (size_t)count * sizeof(int), "gm_batch_labels", file, line);
    if (!ds->y) gm__fatal(file, line, "gm_batch_labels", "the data set \"%s\" has no labels", ds->name);
    for (k = 0; k < count; k++) y[k] = ds->y[ds->order[start + k]];
    return y;
}
