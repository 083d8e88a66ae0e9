
/*
 * Copyright (C) ngx_voucher authors
 *
 * A string-keyed hash map (open addressing, linear probing).  Keys are
 * copied; values are the caller's.
 */


#ifndef _VW_MAP_H_INCLUDED_
#define _VW_MAP_H_INCLUDED_


#include <stddef.h>


typedef struct {
    char     **keys;
    void     **values;
    size_t     size;                /* slots, a power of two */
    size_t     count;
} vw_map_t;


/* the value of key, or NULL */
void *vw_map_get(const vw_map_t *m, const char *key);

/* the slot of key's value, made (NULL) when new */
void **vw_map_slot(vw_map_t *m, const char *key);

/* calls fn for every value (then free the map with vw_map_free) */
void vw_map_each(vw_map_t *m, void (*fn)(const char *key, void *value,
    void *ctx), void *ctx);

void vw_map_free(vw_map_t *m);


#endif /* _VW_MAP_H_INCLUDED_ */
