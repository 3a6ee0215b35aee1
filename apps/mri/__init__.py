"""The MRI segmentation application: the recipe (`recipe`: make data, train, segment,
evaluate) and the `lantern mri` command line (`cli`)."""
