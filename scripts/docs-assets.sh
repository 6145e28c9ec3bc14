#!/usr/bin/env bash
# Vendors the API documentation pages' assets into the gateway binary's
# embedded files (services/gateway/internal/openapi/assets): Swagger UI for
# /docs and Redoc for /redoc, from npm at the versions pinned here, checked
# against the pinned integrity, with their licenses. The result is committed;
# run this (make docs-assets) only to change a version.
set -euo pipefail
cd "$(dirname "$0")/.."

SWAGGER_UI_VERSION=5.36.0
SWAGGER_UI_INTEGRITY=sha512-Lt6/Kb0gXmLdiabLhvso4VdJP9V7qJWB0zh0gzeXUV3+CMOTzMmvpJRSXN7EAjfwixwmoi9ezDbLHiexC7lA9A==
REDOC_VERSION=2.5.4
REDOC_INTEGRITY=sha512-M6jWhG1qoBnH6TFmzJnstyCZ87HmOY/UzDm78mHiYihEdlV/YcS9ogOo1NlElnJMeLsyxHFe2yFc4sNjHTrABQ==

out=services/gateway/internal/openapi/assets
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# fetch NAME VERSION INTEGRITY: the package tarball, unpacked in $tmp/NAME.
fetch() {
	local name=$1 version=$2 integrity=$3 tgz got
	tgz=$(cd "$tmp" && npm pack --silent "$name@$version")
	got="sha512-$(openssl dgst -sha512 -binary "$tmp/$tgz" | base64 -w0)"
	if [[ "$got" != "$integrity" ]]; then
		echo "$name@$version: integrity $got, pinned $integrity" >&2
		exit 1
	fi
	mkdir -p "$tmp/$name"
	tar -xzf "$tmp/$tgz" -C "$tmp/$name" --strip-components=1
}

fetch swagger-ui-dist "$SWAGGER_UI_VERSION" "$SWAGGER_UI_INTEGRITY"
fetch redoc "$REDOC_VERSION" "$REDOC_INTEGRITY"

rm -rf "$out/swagger-ui" "$out/redoc"
mkdir -p "$out/swagger-ui" "$out/redoc"
s=$tmp/swagger-ui-dist
cp "$s/swagger-ui-bundle.js" "$s/swagger-ui-bundle.js.LICENSE.txt" "$s/swagger-ui.css" "$s/LICENSE" "$s/NOTICE" "$out/swagger-ui/"
r=$tmp/redoc
cp "$r/bundles/redoc.standalone.js" "$r/bundles/redoc.standalone.js.LICENSE.txt" "$r/LICENSE" "$out/redoc/"
# The bundles end with a source map comment for a file not shipped.
sed -i '/^\/\/# sourceMappingURL=/d' "$out/swagger-ui/swagger-ui-bundle.js" "$out/redoc/redoc.standalone.js"
# Redoc's sidebar credit shows a logo from the vendor's CDN, which the page's
# Content-Security-Policy (img-src 'self' data:) refuses; an empty data: URL
# fails to decode instead, and Redoc then hides the image (the credit text
# stays). Nothing else in either bundle loads from another origin (the
# browser test checks the console for refusals).
sed -i 's|src:"https://cdn.redoc.ly/redoc/logo-mini.svg"|src:"data:,"|' "$out/redoc/redoc.standalone.js"
grep -q 'cdn.redoc.ly' "$out/redoc/redoc.standalone.js" && { echo "redoc still refers to its CDN" >&2; exit 1; }
printf 'swagger-ui-dist %s %s\nredoc %s %s\n' "$SWAGGER_UI_VERSION" "$SWAGGER_UI_INTEGRITY" "$REDOC_VERSION" "$REDOC_INTEGRITY" >"$out/VERSIONS"
echo "vendored swagger-ui-dist $SWAGGER_UI_VERSION and redoc $REDOC_VERSION into $out"
