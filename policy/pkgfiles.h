/*
 * The registry files Fleet's Integrations pages read that a package
 * document does not list by path: the images its README's markdown names.
 * Pure functions over text; the caller (mirror) fetches what they name.
 */
#ifndef AIRLOCK_POLICY_PKGFILES_H
#define AIRLOCK_POLICY_PKGFILES_H

#include <stddef.h>

/*
 * Kibana's removeRelativePath (fleet/public/applications/integrations/hooks/
 * use_links.tsx): the pathname of uri resolved against http://example.com,
 * as the WHATWG URL parser gives it: query and fragment dropped, dot
 * segments resolved, '\' read as '/', spaces and other bytes outside the
 * path set percent-encoded.  Writes a NUL-terminated path that starts with
 * '/' into out.  0, -EINVAL for a uri with a scheme (http:, data:...), or
 * -ENAMETOOLONG.
 */
int al_url_pathname(const char *uri, size_t len, char *out, size_t cap);

/*
 * Calls cb(path, arg) for each image the markdown shows through Kibana's
 * file route, path being al_url_pathname of its destination (so the file
 * is /package/<name>/<version><path>): inline images ![alt](uri "title"),
 * ![alt](<uri>), and reference images ![alt][label], ![label][], ![label]
 * with their [label]: uri definitions.  Destinations that start with
 * http:// or https:// are loaded by the browser itself (readme.tsx
 * handleImageUri) and are skipped, as are images in code spans and fenced
 * code blocks (never rendered).  cb may see a path twice.  Returns the
 * number of calls.
 */
int al_readme_images(const char *md, size_t len, void (*cb)(const char *path, void *arg), void *arg);

#endif
