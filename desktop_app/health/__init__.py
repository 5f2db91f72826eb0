"""Pipeline health and control: pure health rules, a worker gathering facts off the GUI
thread, the controller running components through ``desktop_app.process``, and the panel.
"""
