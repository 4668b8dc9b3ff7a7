/* Mini-batches. Batch i of size B holds examples ds->order[j B .. min(n, (j+1) B)) with
 * j = i mod ceil(n/B): so i can count steps past the end of an epoch, and the last batch of
 * an epoch is smaller when B does not divide n. Shuffle ds->order between epochs with
 * gm_dataset_shuffle. Images come out as (B,C,H,W), vectors as (B,D). */
GMDEF gm_tensor *gm_batch_at(gm_tape *T, const gm_dataset *ds, long i, int B, GM__SITE);
GMDEF int       *gm_batch_labels_at(gm_tape *T, const gm_dataset *ds, long i, int B, GM__SITE);
GMDEF int        gm_batches(const gm_dataset *ds, int B);   /* ceil(n / B): batches per epoch */
#define gm_batch(...)        gm_batch_at(__VA_ARGS__, GM__HERE)
#define gm_batch_labels(...) gm_batch_labels_at(__VA_ARGS__, GM__HERE)
