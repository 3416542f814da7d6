# nbgrader's settings for this chapter's folder, released with the notebook. In a terminal here,
#
#     nbgrader validate <notebook>.ipynb
#
# runs the notebook from a fresh kernel, as the grader does, and lists every check that fails,
# with its whole message. nbgrader reads this file from the folder it runs in: without one, it
# warns that no nbgrader_config.py was found.
c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)
