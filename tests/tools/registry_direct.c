/*
 * The offline registry's answer computed the old way, for tests: every
 * package document parsed whole and handed to policy/registry.c at once
 * (what proxy/front/offline_registry.c did before the index).
 *   registry_direct DOCS.json search|categories 'QUERY'
 * DOCS.json is an array of package documents; prints the body, or the
 * 400 message with exit status 3.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/registry.h"

int main(int argc, char **argv)
{
	struct al_registry_query q;
	json_error_t e;
	json_t *docs;
	char *out;
	int cat;

	if (argc != 4 || (strcmp(argv[2], "search") != 0 && strcmp(argv[2], "categories") != 0)) {
		fprintf(stderr, "usage: registry_direct DOCS.json search|categories QUERY\n");
		return 2;
	}
	cat = strcmp(argv[2], "categories") == 0;
	if ((docs = json_load_file(argv[1], 0, &e)) == NULL) {
		fprintf(stderr, "registry_direct: %s: %s\n", argv[1], e.text);
		return 1;
	}
	if (al_registry_query_parse(argv[3], strlen(argv[3]), cat, &q) != 0) {
		printf("%s\n", q.error);
		json_decref(docs);
		return 3;
	}
	out = cat ? al_registry_categories(docs, &q) : al_registry_search(docs, &q);
	json_decref(docs);
	if (out == NULL)
		return 1;
	fputs(out, stdout);
	free(out);
	return 0;
}
