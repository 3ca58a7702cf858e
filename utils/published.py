"""python -m utils.published: the published reference figures as a table (the data and its citations:
utils/reference/published_results.json; docs/reference-results.md shows the table)."""
from utils.reference.figures import load_published, reference_table

if __name__ == "__main__":
    print(reference_table(load_published()[0]))
