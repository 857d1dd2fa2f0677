"""Evidence sources (one module each), the analyzers that turn evidence into hypotheses, and charts."""
