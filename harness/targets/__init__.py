"""The targets of a run: start what an inventory needs, log in, and tell the lab's outages apart.

environment.py (KMS, fake vCenters, vcsims started and stopped), connect.py (a ServiceInstance for
an inventory entry), control.py (fault injection a suite may ask for), health.py (is the KMS or
vCenter still answering?), outage.py (is a verdict the product's or the lab's?).
"""
