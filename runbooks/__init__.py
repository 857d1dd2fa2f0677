"""The bundled runbooks (Markdown with front matter; runbooks/README.md): shipped with the package so
the demo's diagnosis links one from an installed wheel too."""
