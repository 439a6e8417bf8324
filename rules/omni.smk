# Stage: omni (see the issues that introduce it).
