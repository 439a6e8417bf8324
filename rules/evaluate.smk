# Stage: evaluate (see the issues that introduce it).
