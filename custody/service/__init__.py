"""The use cases: intake, the backstop pass, the roster, views of cases and the
report, each a function around one unit of work. Pure domain in, domain out;
the infrastructure they use is handed to them (the `Core`)."""
