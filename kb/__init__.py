"""Knowledge base: articles, versions, usefulness scores, promotion, indexing and search."""
