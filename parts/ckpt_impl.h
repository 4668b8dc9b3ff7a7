// >>checkpoints
/* Layout, all integers little-endian u32, values little-endian float32:
 *   "GMCKPT\r\n"  version  count
 *   count times:  name_len  name  ndim  d[0..ndim)  values
 *   crc32 of every byte before it */
#define GM__CKPT_VERSION 1u

static void gm__put32(unsigned char **p, uint32_t v)
{
    (*p)[0] = (unsigned char)v; (*p)[1] = (unsigned char)(v >> 8);
    (*p)[2] = (unsigned char)(v >> 16); (*p)[3] = (unsigned char)(v >> 24);
    *p += 4;
}

static uint32_t gm__float_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float gm__bits_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

GMDEF int gm_save_params(const gm_params *P, const char *path)
{
    size_t bytes = 8 + 4 + 4 + 4, len;
    unsigned char *buf, *p;
    gm__outfile o;
    int i, k;
    for (i = 0; i < P->n; i++) bytes += 4 + strlen(P->t[i]->name) + 4 + 4 * (size_t)P->t[i]->shape.ndim + 4 * (size_t)P->t[i]->size;
    buf = (unsigned char *)gm__calloc(bytes, 1);
    if (!buf) return gm__error("%s: out of memory saving", path);
    p = buf;
    memcpy(p, "GMCKPT\r\n", 8); p += 8;
    gm__put32(&p, GM__CKPT_VERSION);
    gm__put32(&p, (uint32_t)P->n);
    for (i = 0; i < P->n; i++) {
        const gm_tensor *t = P->t[i];
        len = strlen(t->name);
        gm__put32(&p, (uint32_t)len);
        memcpy(p, t->name, len); p += len;
        gm__put32(&p, (uint32_t)t->shape.ndim);
        for (k = 0; k < t->shape.ndim; k++) gm__put32(&p, (uint32_t)t->shape.d[k]);
        for (k = 0; k < t->size; k++) gm__put32(&p, gm__float_bits(t->val[k]));
    }
    gm__put32(&p, gm__crc32(buf, (size_t)(p - buf)));
    /* through "<path>.tmp" and a rename (>>output-files): the old file survives any failure */
    if (!gm__out_open(&o, path)) { GM_FREE(buf); return 0; }
    gm__out_write(&o, buf, bytes);
    GM_FREE(buf);
    return gm__out_close(&o, path);
}

static gm_tensor *gm__find_param(const gm_params *P, const unsigned char *name, size_t len)
{
    int i;
    for (i = 0; i < P->n; i++)
        if (strlen(P->t[i]->name) == len && memcmp(P->t[i]->name, name, len) == 0) return P->t[i];
    return NULL;
}

/* Check everything first, copy values only once the whole file has been found good. */
GMDEF int gm_load_params(gm_params *P, const char *path)
{
    unsigned char *buf;
    const unsigned char *p, *end, **vals;
    size_t len;
    uint32_t version, count, i, k;
    int ok = 0;
    char b1[64], b2[64];
    if (!gm__read_file(path, &buf, &len)) return 0;
    vals = (const unsigned char **)gm__calloc((size_t)P->n + 1, sizeof *vals);
    if (!vals) { GM_FREE(buf); return 0; }
    end = buf + len;
    if (len < 20 || memcmp(buf, "GMCKPT\r\n", 8) != 0) { gm__error("%s: not a genmod checkpoint (bad magic)", path); goto done; }
    version = gm__le32(buf + 8);
    count = gm__le32(buf + 12);
    if (version != GM__CKPT_VERSION) {
        gm__error("%s: checkpoint version %u, this genmod reads version %u", path, version, GM__CKPT_VERSION);
        goto done;
    }
    if (gm__crc32(buf, len - 4) != gm__le32(end - 4)) { gm__error("%s: corrupt or truncated (checksum mismatch)", path); goto done; }
    if (count != (uint32_t)P->n) {
        gm__error("%s: holds %u tensors, the model has %d", path, count, P->n);
        goto done;
    }
    end -= 4;
    p = buf + 16;
    for (i = 0; i < count; i++) {
        gm_shape s;
        gm_tensor *t;
        uint32_t nlen, ndim;
        int j;
        if (end - p < 4 || (nlen = gm__le32(p)) > (size_t)(end - p - 4)) { gm__error("%s: truncated in tensor %u", path, i); goto done; }
        t = gm__find_param(P, p + 4, nlen);
        if (!t) { gm__error("%s: tensor \"%.*s\" is not in the model", path, (int)(nlen > 64 ? 64 : nlen), p + 4); goto done; }
        p += 4 + nlen;
        if (end - p < 4 || (ndim = gm__le32(p)) < 1 || ndim > 4 || (size_t)(end - p) < 4 + 4 * (size_t)ndim) {
            gm__error("%s: tensor \"%s\" has a bad shape", path, t->name);
            goto done;
        }
        s.ndim = (int)ndim;
        for (k = 0; k < 4; k++) s.d[k] = k < ndim ? (int)gm__le32(p + 4 + 4 * k) : 1;
        if (!gm__same_shape(s, t->shape)) {
            gm__error("%s: tensor \"%s\" is %s in the file but %s in the model", path, t->name,
                      gm__shape_str(s, b1), gm__shape_str(t->shape, b2));
            goto done;
        }
        p += 4 + 4 * ndim;
        if ((size_t)(end - p) < 4 * (size_t)t->size) { gm__error("%s: truncated in tensor \"%s\"", path, t->name); goto done; }
        for (j = 0; j < P->n; j++)
            if (P->t[j] == t) {
                if (vals[j]) { gm__error("%s: tensor \"%s\" appears twice", path, t->name); goto done; }
                vals[j] = p;
            }
        p += 4 * (size_t)t->size;
    }
    if (p != end) { gm__error("%s: %zu unexpected bytes after the last tensor", path, (size_t)(end - p)); goto done; }
    for (i = 0; i < (uint32_t)P->n; i++)
        for (k = 0; k < (uint32_t)P->t[i]->size; k++) P->t[i]->val[k] = gm__bits_float(gm__le32(vals[i] + 4 * k));
    ok = 1;
done:
    GM_FREE(vals);
    GM_FREE(buf);
    return ok;
}
