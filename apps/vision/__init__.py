"""The image-classification application: the training recipe (`recipe`) and the
`lantern vision` command line (`cli`)."""
