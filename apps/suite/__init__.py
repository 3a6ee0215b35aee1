"""The suite-level commands of `lantern`, shared by every application: `lantern zoo` (the
model zoo of all domains), `lantern data` (the data hub's sources) and `lantern doctor`
(what this installation has and lacks). Each module defines the group's `add_parser`."""
