# Stage: extract (see the issues that introduce it).
