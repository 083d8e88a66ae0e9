
/*
 * Copyright (C) ngx_voucher authors
 *
 * A string-keyed hash map: see vw_map.h.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vw_map.h"
#include "vw_util.h"


static size_t
vw_map_hash(const char *s)
{
    uint64_t  h;

    /* FNV-1a */
    h = 14695981039346656037ULL;

    for ( /* void */ ; *s; s++) {
        h ^= (unsigned char) *s;
        h *= 1099511628211ULL;
    }

    return (size_t) h;
}


static size_t
vw_map_find(const vw_map_t *m, const char *key)
{
    size_t  i;

    i = vw_map_hash(key) & (m->size - 1);

    while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0) {
        i = (i + 1) & (m->size - 1);
    }

    return i;
}


static void
vw_map_grow(vw_map_t *m)
{
    size_t     i, j, old;
    char     **keys;
    void     **values;

    old = m->size;
    keys = m->keys;
    values = m->values;

    m->size = old ? old * 2 : 64;
    m->keys = vw_xalloc(m->size * sizeof(char *));
    m->values = vw_xalloc(m->size * sizeof(void *));

    for (i = 0; i < old; i++) {
        if (keys[i] != NULL) {
            j = vw_map_find(m, keys[i]);
            m->keys[j] = keys[i];
            m->values[j] = values[i];
        }
    }

    free(keys);
    free(values);
}


void *
vw_map_get(const vw_map_t *m, const char *key)
{
    size_t  i;

    if (m->size == 0) {
        return NULL;
    }

    i = vw_map_find(m, key);

    return m->keys[i] ? m->values[i] : NULL;
}


void **
vw_map_slot(vw_map_t *m, const char *key)
{
    size_t  i;

    /* at most half full, so probes stay short */
    if ((m->count + 1) * 2 > m->size) {
        vw_map_grow(m);
    }

    i = vw_map_find(m, key);

    if (m->keys[i] == NULL) {
        m->keys[i] = vw_xstrdup(key);
        m->values[i] = NULL;
        m->count++;
    }

    return &m->values[i];
}


void
vw_map_each(vw_map_t *m, void (*fn)(const char *key, void *value, void *ctx),
    void *ctx)
{
    size_t  i;

    for (i = 0; i < m->size; i++) {
        if (m->keys[i] != NULL) {
            fn(m->keys[i], m->values[i], ctx);
        }
    }
}


void
vw_map_free(vw_map_t *m)
{
    size_t  i;

    for (i = 0; i < m->size; i++) {
        free(m->keys[i]);
    }

    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof(vw_map_t));
}
