"""The text-classification application: the training recipe (`recipe`) and the
`lantern text` command line (`cli`)."""
