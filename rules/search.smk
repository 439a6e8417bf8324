# Stage: search (see the issues that introduce it).
