"""A student's single-user server: the Assignments tab, not the instructor's formgrader."""

c = get_config()  # noqa: F821  (injected by traitlets)
c.ServerApp.jpserver_extensions = {
    "nbgrader.server_extensions.formgrader": False,
    "nbgrader.server_extensions.course_list": False,
    "nbgrader.server_extensions.assignment_list": True,
    "nbgrader.server_extensions.validate_assignment": True,
}
