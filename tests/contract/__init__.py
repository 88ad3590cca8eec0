"""The metadata-store contract (`stores.metadata.MetadataStore`), written once and run against every backend."""
