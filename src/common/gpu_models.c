/* SPDX-License-Identifier: Apache-2.0 */
/* gf_gpu_model_*: the GPU model table (generated from data/gpu_models.csv) and its lookups. */
#include "gpufuse/gpu_models.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

static const gf_gpu_model models[] = {
#include "gpu_models_data.h"
};

#define NMODELS (sizeof models / sizeof models[0])

unsigned gf_gpu_model_count(void)
{
    return (unsigned)NMODELS;
}

const gf_gpu_model *gf_gpu_model_at(unsigned i)
{
    return i < NMODELS ? &models[i] : NULL;
}

/* Splits s into lowercase alphanumeric words; returns how many (at most max). */
#define MAX_WORDS 24
#define WORD_LEN 32
static unsigned split_words(const char *s, char words[][WORD_LEN], unsigned max)
{
    unsigned n = 0;
    while (*s && n < max) {
        while (*s && !isalnum((unsigned char)*s)) s++;
        if (!*s) break;
        size_t len = 0;
        while (isalnum((unsigned char)*s)) {
            if (len < WORD_LEN - 1) words[n][len++] = (char)tolower((unsigned char)*s);
            s++;
        }
        words[n++][len] = '\0';
    }
    return n;
}

/* Nonzero when w equals a word of the name, or two adjacent words written together
 * ("rtx" "4090" for "rtx4090"). */
static int has_word(char words[][WORD_LEN], unsigned n, const char *w)
{
    for (unsigned i = 0; i < n; i++) {
        if (!strcmp(words[i], w)) return 1;
        if (i + 1 < n) {
            size_t a = strlen(words[i]);
            if (!strncmp(words[i], w, a) && !strcmp(words[i + 1], w + a)) return 1;
        }
    }
    return 0;
}

/* Nonzero when w starts a word of the name ("80g" starts "80gb"). */
static int has_prefix(char words[][WORD_LEN], unsigned n, const char *w)
{
    size_t len = strlen(w);
    for (unsigned i = 0; i < n; i++)
        if (!strncmp(words[i], w, len)) return 1;
    return 0;
}

/* How many parts of m's key the name's words match, or 0 when it does not name m. */
static unsigned name_score(const gf_gpu_model *m, char words[][WORD_LEN], unsigned n)
{
    char parts[8][WORD_LEN];
    unsigned np = split_words(m->key, parts, 8);
    if (np == 0 || !has_word(words, n, parts[0])) return 0;
    for (unsigned i = 1; i < np; i++)
        if (!has_prefix(words, n, parts[i])) return 0;
    return np;
}

const gf_gpu_model *gf_gpu_model_find(const char *key_or_name)
{
    if (!key_or_name || !*key_or_name) return NULL;
    for (size_t i = 0; i < NMODELS; i++)
        if (!strcasecmp(models[i].key, key_or_name)) return &models[i];
    for (size_t i = 0; i < NMODELS; i++)
        if (!strcasecmp(models[i].name, key_or_name)) return &models[i];

    char words[MAX_WORDS][WORD_LEN];
    unsigned n = split_words(key_or_name, words, MAX_WORDS);
    const gf_gpu_model *best = NULL;
    unsigned best_score = 0;
    int tie = 0;
    for (size_t i = 0; i < NMODELS; i++) {
        unsigned sc = name_score(&models[i], words, n);
        if (sc > best_score) {
            best = &models[i];
            best_score = sc;
            tie = 0;
        } else if (sc && sc == best_score) {
            tie = 1;
        }
    }
    return tie ? NULL : best;
}
