"""Past-incident memory (Chroma). Not built yet: investigations report `incidents` as not_configured."""
