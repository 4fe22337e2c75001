# install.cmake - the systemd unit and the config file, installed with the
# paths of this installation. Run by `cmake --install` (CMakeLists.txt sets
# SEM_DIST_DIR, SEM_BUILD_DIR, SEM_SYSCONFDIR and SEM_UNITDIR before it), so
# CMAKE_INSTALL_PREFIX is the prefix given then (--prefix) and DESTDIR,
# from the environment, is put in front of every path by file(INSTALL).
#
#   <prefix>/lib/systemd/system/semantic.service   the unit, replaced by every install
#   <sysconfdir>/semantic/semantic.conf            the example, only where no file is:
#                                                  an installed config is the admin's,
#                                                  never overwritten nor uninstalled
#
# sysconfdir: SEM_SYSCONFDIR if set, else /etc for the prefixes /usr and
# /usr/local (a system service's config lives in /etc), else <prefix>/etc.
set(prefix "${CMAKE_INSTALL_PREFIX}")
if(SEM_SYSCONFDIR)
  set(sysconfdir "${SEM_SYSCONFDIR}")
elseif(prefix STREQUAL "/usr" OR prefix STREQUAL "/usr/local")
  set(sysconfdir "/etc")
else()
  set(sysconfdir "${prefix}/etc")
endif()
if(IS_ABSOLUTE "${SEM_UNITDIR}")
  set(unitdir "${SEM_UNITDIR}")
else()
  set(unitdir "${prefix}/${SEM_UNITDIR}")
endif()

set(BINDIR "${prefix}/bin")
set(SYSCONFDIR "${sysconfdir}")
set(DOCDIR "${prefix}/share/doc/semantic")
configure_file("${SEM_DIST_DIR}/systemd/semantic.service.in"
               "${SEM_BUILD_DIR}/dist/semantic.service" @ONLY)
file(INSTALL DESTINATION "${unitdir}" TYPE FILE
     FILES "${SEM_BUILD_DIR}/dist/semantic.service")

set(conf "${sysconfdir}/semantic/semantic.conf")
if(EXISTS "$ENV{DESTDIR}${conf}")
  message(STATUS "Keeping: $ENV{DESTDIR}${conf} (the installed config; the example of this "
                 "release is in ${DOCDIR}/examples/semantic.conf)")
else()
  file(INSTALL DESTINATION "${sysconfdir}/semantic" TYPE FILE
       FILES "${SEM_DIST_DIR}/semantic.conf")
  # The config is the admin's from now on: `make uninstall` leaves it.
  list(REMOVE_ITEM CMAKE_INSTALL_MANIFEST_FILES "$ENV{DESTDIR}${conf}" "${conf}")
endif()
