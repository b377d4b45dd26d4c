"""nbgrader settings every user of the hub shares: the course and the exchange folder.

The hub's spawner points JUPYTER_CONFIG_PATH of each single-user server at
jupyterhub/student/ or jupyterhub/instructor/, and both load this file. On a
machine without the hub, the same lines go into /etc/jupyter/nbgrader_config.py.
"""

import os

c = get_config()  # noqa: F821  (injected by traitlets)
c.CourseDirectory.course_id = "dl-course-ru"
# A folder every user may read and write (nbgrader's setup: mkdir, then chmod ugo+rw).
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE", "/srv/nbgrader/exchange")
