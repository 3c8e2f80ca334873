/*
 * The images a package README shows through Kibana's file route: Fleet's
 * readme.tsx handleImageUri sends every destination that does not start
 * with http:// or https:// to use_links.tsx toRelativeImage, which keeps
 * removeRelativePath(uri) = new URL(uri, 'http://example.com').pathname
 * (elastic/kibana 027ff216 x-pack/platform/plugins/shared/fleet/public/
 * applications/integrations/hooks/use_links.tsx).  The expected pathnames
 * are what the WHATWG URL parser gives (node: new URL(u, base).pathname).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "policy/pkgfiles.h"

static void pathname_is(const char *uri, const char *want)
{
	char out[512];

	if (al_url_pathname(uri, strlen(uri), out, sizeof(out)) != 0)
		fail_msg("%s: refused", uri);
	if (strcmp(out, want) != 0)
		fail_msg("%s: got %s, want %s", uri, out, want);
}

static void test_pathname(void **state)
{
	char out[64];

	(void)state;
	pathname_is("../img/a.png", "/img/a.png");
	pathname_is("./img/a.png", "/img/a.png");
	pathname_is("img/a.png", "/img/a.png");
	pathname_is("/img/a.png", "/img/a.png");
	pathname_is("a/../../b.png", "/b.png");
	pathname_is("..\\img\\a.png", "/img/a.png");
	pathname_is("img/a b.png", "/img/a%20b.png");
	pathname_is("img/a%20b.png", "/img/a%20b.png");
	pathname_is("img/a.png?x=1#frag", "/img/a.png");
	pathname_is("//cdn.example/img/a.png", "/img/a.png");
	pathname_is("img/", "/img/");
	pathname_is("img/.", "/img/");
	pathname_is("img/..", "/");
	pathname_is("a//b.png", "/a//b.png");
	pathname_is("  img/a.png \n", "/img/a.png");
	pathname_is("img/%2e%2E/x.png", "/x.png");
	pathname_is("img/caf\xc3\xa9.png", "/img/caf%C3%A9.png");
	assert_int_equal(al_url_pathname("https://x/y.png", 15, out, sizeof(out)), -EINVAL);
	assert_int_equal(al_url_pathname("data:image/png;base64,AAAA", 26, out, sizeof(out)), -EINVAL);
	assert_int_equal(al_url_pathname("img/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.png", 82, out,
	    sizeof(out)), -ENAMETOOLONG);
}

struct seen {
	char v[16][128];
	int n;
};

static void collect(const char *path, void *arg)
{
	struct seen *s = arg;

	if (s->n < 16)
		snprintf(s->v[s->n++], sizeof(s->v[0]), "%s", path);
}

static void test_readme_images(void **state)
{
	static const char md[] =
	    "# Nginx\n\n"
	    "![Overview](../img/overview.png)\n"
	    "Text with ![dash](./img/dash%20board.png \"A title\") inline.\n"
	    "![external](https://example.org/x.png) is the browser's business.\n"
	    "`![code](img/code.png)` is a code span.\n"
	    "```yaml\n![fenced](img/fenced.png)\n```\n"
	    "~~~\n![tilde](img/tilde.png)\n~~~\n"
	    "![ref][shot] and ![Shot2] and ![shot3][]\n\n"
	    "[shot]: ../img/ref.png\n"
	    "[shot2]: <img/ref 2.png> \"t\"\n"
	    "  [SHOT3]: img/ref3.png\n"
	    "![angle](<img/with space.png>)\n"
	    "![paren](img/a(1).png)\n"
	    "\\![escaped](img/esc.png)\n"
	    "![data](data:image/png;base64,AAAA)\n"
	    "![unknown ref][nope]\n"
	    "[link](img/not-an-image.png)\n"
	    "![unclosed](img/x.png";
	static const char *const want[] = {
		"/img/overview.png", "/img/dash%20board.png", "/img/ref.png", "/img/ref%202.png", "/img/ref3.png",
		"/img/with%20space.png", "/img/a(1).png", "/img/x.png",
	};
	struct seen s = {.n = 0};

	(void)state;
	assert_int_equal(al_readme_images(md, sizeof(md) - 1, collect, &s), 8);
	assert_int_equal(s.n, 8);
	for (int i = 0; i < 8; i++)
		assert_string_equal(s.v[i], want[i]);
	s.n = 0;
	assert_int_equal(al_readme_images("", 0, collect, &s), 0);
	assert_int_equal(al_readme_images("![", 2, collect, &s), 0);
	assert_int_equal(al_readme_images("![a](", 5, collect, &s), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pathname),
		cmocka_unit_test(test_readme_images),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
