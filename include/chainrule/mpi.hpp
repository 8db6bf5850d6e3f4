// chainrule::mpi (target chainrule::mpi, built when Open MPI is found): the Group of an MPI job.
// A program started by mpirun initializes MPI through a Session; started any other way, the
// Session does nothing and the program runs alone, with no MPI initialisation.
#pragma once

#include <memory>

#include "chainrule/group.hpp"

namespace chainrule::mpi {

/// Whether this process was started by mpirun (or another MPI launcher): Open MPI's and PMIx's
/// environment variables, read without initializing MPI.
bool launched();

/// MPI for the lifetime of this object when launched(), else nothing. One per program.
class Session {
 public:
  Session();
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  /// The job's processes (MPI_COMM_WORLD), or null when not launched by mpirun.
  const Group* group() const { return group_.get(); }

 private:
  std::unique_ptr<Group> group_;
};

}  // namespace chainrule::mpi
