/* ======================================================================================
 * 11. checkpoints
 *   A file of named tensors (magic "GMCKPT01", count, then name, shape and values of each,
 *   then a CRC-32 of everything before it). Saving writes "<path>.tmp" and renames it, so a
 *   crash mid-save leaves the previous file whole. Loading checks magic, version, checksum,
 *   and that names and shapes match the model exactly; on any mismatch it returns 0 with
 *   the reason and the model is unchanged.
 * ====================================================================================== */
GMDEF int gm_save_params(const gm_params *P, const char *path);
GMDEF int gm_load_params(gm_params *P, const char *path);
